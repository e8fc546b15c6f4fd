#include "virtio.h"
#include "io.h"

#define F_VERSION_1	32
#define F_INDIRECT_DESC 28

/* Where the guest keeps a request's header and status byte (see cases.c's memory map). */
#define REQ_SCRATCH 0x3f0000ULL

uint32_t vdev_read(const struct vdev *d, uint32_t reg)
{
	return mmio_read32(d->base + reg);
}

void vdev_write(const struct vdev *d, uint32_t reg, uint32_t value)
{
	mmio_write32(d->base + reg, value);
}

bool vdev_find(struct vdev *d, uint32_t device_id)
{
	for (int i = 0; i < VIRTIO_MMIO_SLOTS; i++) {
		uint64_t base = VIRTIO_MMIO_FIRST + i * VIRTIO_MMIO_STRIDE;

		if (mmio_read32(base + REG_MAGIC) != 0x74726976) /* "virt" */
			continue;
		if (mmio_read32(base + REG_DEVICE_ID) == device_id) {
			d->base = base;
			d->id = device_id;
			return true;
		}
	}
	return false;
}

void vdev_reset(const struct vdev *d)
{
	vdev_write(d, REG_STATUS, 0);
}

bool vdev_wait_needs_reset(const struct vdev *d, uint32_t ms)
{
	uint64_t end = deadline_ms(ms);

	do {
		if (vdev_read(d, REG_STATUS) & STATUS_DEVICE_NEEDS_RESET)
			return true;
	} while (!expired(end));
	return false;
}

bool vdev_negotiate(const struct vdev *d)
{
	vdev_reset(d);
	vdev_write(d, REG_STATUS, STATUS_ACKNOWLEDGE);
	vdev_write(d, REG_STATUS, STATUS_ACKNOWLEDGE | STATUS_DRIVER);
	vdev_write(d, REG_DRV_FEAT_SEL, 0);
	vdev_write(d, REG_DRV_FEATURES, 1u << F_INDIRECT_DESC);
	vdev_write(d, REG_DRV_FEAT_SEL, 1);
	vdev_write(d, REG_DRV_FEATURES, 1u << (F_VERSION_1 - 32));
	vdev_write(d, REG_STATUS, STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK);
	return vdev_read(d, REG_STATUS) & STATUS_FEATURES_OK;
}

static void write_addr(struct vdev *d, uint32_t reg, uint64_t gpa)
{
	vdev_write(d, reg, (uint32_t)gpa);
	vdev_write(d, reg + 4, (uint32_t)(gpa >> 32));
}

void vq_setup(struct vdev *d, struct vq *q, uint16_t index, uint16_t size, uint64_t area)
{
	*q = (struct vq){
	    .dev = d,
	    .index = index,
	    .size = size,
	    .area = area,
	    .desc = (volatile struct vring_desc *)area,
	    .avail = (volatile struct vring_avail *)(area + 0x1000),
	    .used = (volatile struct vring_used *)(area + 0x2000),
	};
	memset((void *)area, 0, 0x3000);
	vdev_write(d, REG_QUEUE_SEL, index);
	vdev_write(d, REG_QUEUE_NUM, size);
	write_addr(d, REG_QUEUE_DESC, area);
	write_addr(d, REG_QUEUE_DRIVER, area + 0x1000);
	write_addr(d, REG_QUEUE_DEVICE, area + 0x2000);
	vdev_write(d, REG_QUEUE_READY, 1);
}

void vdev_driver_ok(const struct vdev *d)
{
	vdev_write(d, REG_STATUS,
		   STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK | STATUS_DRIVER_OK);
}

bool vdev_start(struct vdev *d, struct vq *q, uint16_t size, uint64_t area)
{
	if (!vdev_negotiate(d))
		return false;
	vq_setup(d, q, 0, size, area);
	vdev_driver_ok(d);
	return !(vdev_read(d, REG_STATUS) & STATUS_DEVICE_NEEDS_RESET);
}

void vq_set_desc(struct vq *q, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags,
		 uint16_t next)
{
	volatile struct vring_desc *d = &q->desc[i];

	d->addr = addr;
	d->len = len;
	d->flags = flags;
	d->next = next;
}

void vq_publish(struct vq *q, uint16_t head)
{
	q->avail->ring[q->next_avail % q->size] = head;
	barrier();
	q->avail->idx = ++q->next_avail;
	barrier();
}

void vq_kick(const struct vq *q)
{
	vdev_write(q->dev, REG_QUEUE_NOTIFY, q->index);
}

bool vq_wait_used(struct vq *q, uint32_t ms, uint32_t *len)
{
	uint64_t end = deadline_ms(ms);

	do {
		if (q->used->idx != q->last_used) {
			barrier();
			*len = q->used->ring[q->last_used % q->size].len;
			q->last_used++;
			return true;
		}
	} while (!expired(end));
	return false;
}

bool blk_read(struct vq *q, uint64_t sector, void *buf)
{
	volatile uint32_t *hdr = (volatile uint32_t *)REQ_SCRATCH;
	volatile uint8_t *status = (volatile uint8_t *)(REQ_SCRATCH + 16);
	uint32_t len;

	hdr[0] = 0; /* VIRTIO_BLK_T_IN */
	hdr[1] = 0;
	*(volatile uint64_t *)(REQ_SCRATCH + 8) = sector;
	*status = 0xff;
	vq_set_desc(q, 0, REQ_SCRATCH, 16, DESC_F_NEXT, 1);
	vq_set_desc(q, 1, (uint64_t)buf, 512, DESC_F_NEXT | DESC_F_WRITE, 2);
	vq_set_desc(q, 2, REQ_SCRATCH + 16, 1, DESC_F_WRITE, 0);
	vq_publish(q, 0);
	vq_kick(q);
	return vq_wait_used(q, 2000, &len) && len == 513 && *status == 0;
}

bool rng_read(struct vq *q, void *buf, uint32_t len)
{
	uint32_t got;

	vq_set_desc(q, 0, (uint64_t)buf, len, DESC_F_WRITE, 0);
	vq_publish(q, 0);
	vq_kick(q);
	return vq_wait_used(q, 2000, &got) && got == len;
}
