/* The hostile guest's virtio-mmio driver side (virtio 1.x, split rings): find a device, set it
 * up, and build rings by hand, so that cases.c can write anything into them. Everything polls:
 * a bare-metal guest has no interrupt controller. */
#ifndef HOSTILE_VIRTIO_H
#define HOSTILE_VIRTIO_H

#include <stdbool.h>
#include <stdint.h>

#define VIRTIO_MMIO_FIRST  0xd0000000ULL /* skiff's x86 layout: one page per device */
#define VIRTIO_MMIO_STRIDE 0x1000ULL
#define VIRTIO_MMIO_SLOTS  32

/* Registers (virtio 1.x 4.2.2). */
#define REG_MAGIC	  0x000
#define REG_DEVICE_ID	  0x008
#define REG_DEV_FEATURES  0x010
#define REG_DEV_FEAT_SEL  0x014
#define REG_DRV_FEATURES  0x020
#define REG_DRV_FEAT_SEL  0x024
#define REG_QUEUE_SEL	  0x030
#define REG_QUEUE_NUM_MAX 0x034
#define REG_QUEUE_NUM	  0x038
#define REG_QUEUE_READY	  0x044
#define REG_QUEUE_NOTIFY  0x050
#define REG_STATUS	  0x070
#define REG_QUEUE_DESC	  0x080
#define REG_QUEUE_DRIVER  0x090
#define REG_QUEUE_DEVICE  0x0a0
#define REG_CONFIG	  0x100

#define VIRTIO_ID_BLOCK	  2
#define VIRTIO_ID_CONSOLE 3
#define VIRTIO_ID_RNG	  4

#define STATUS_ACKNOWLEDGE	  1
#define STATUS_DRIVER		  2
#define STATUS_DRIVER_OK	  4
#define STATUS_FEATURES_OK	  8
#define STATUS_DEVICE_NEEDS_RESET 0x40

#define DESC_F_NEXT	1
#define DESC_F_WRITE	2
#define DESC_F_INDIRECT 4

struct vring_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct vring_avail {
	uint16_t flags;
	uint16_t idx;
	uint16_t ring[];
};

struct vring_used {
	uint16_t flags;
	uint16_t idx;
	struct {
		uint32_t id;
		uint32_t len;
	} ring[];
};

struct vdev {
	uint64_t base; /* its register page */
	uint32_t id;
};

/* One queue laid out in a 12 KiB area: descriptors, then the available ring at +4 KiB and the
 * used ring at +8 KiB. */
struct vq {
	struct vdev *dev;
	uint16_t index, size;
	uint64_t area;
	volatile struct vring_desc *desc;
	volatile struct vring_avail *avail;
	volatile struct vring_used *used;
	uint16_t next_avail, last_used;
};

static inline uint64_t vq_desc_gpa(const struct vq *q)
{
	return q->area;
}

bool vdev_find(struct vdev *d, uint32_t device_id);
uint32_t vdev_read(const struct vdev *d, uint32_t reg);
void vdev_write(const struct vdev *d, uint32_t reg, uint32_t value);
/* Status 0: the device forgets its queues and any DEVICE_NEEDS_RESET. */
void vdev_reset(const struct vdev *d);
/* True once Status shows DEVICE_NEEDS_RESET, polled for up to `ms`. */
bool vdev_wait_needs_reset(const struct vdev *d, uint32_t ms);

/* Reset, ACKNOWLEDGE, DRIVER, features VERSION_1 + INDIRECT_DESC, FEATURES_OK (checked). */
bool vdev_negotiate(const struct vdev *d);
/* Queue `index`: size, ring addresses in `area`, ready (nothing is checked: hostile cases write
 * what they like afterwards through vdev_write). */
void vq_setup(struct vdev *d, struct vq *q, uint16_t index, uint16_t size, uint64_t area);
void vdev_driver_ok(const struct vdev *d);
/* vdev_negotiate + vq_setup(queue 0) + DRIVER_OK. */
bool vdev_start(struct vdev *d, struct vq *q, uint16_t size, uint64_t area);

void vq_set_desc(struct vq *q, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags,
		 uint16_t next);
/* Puts `head` in the next available slot and publishes it (avail->idx + 1). */
void vq_publish(struct vq *q, uint16_t head);
void vq_kick(const struct vq *q);
/* Waits up to `ms` for the next used element; its length in *len. */
bool vq_wait_used(struct vq *q, uint32_t ms, uint32_t *len);

/* Well-behaved requests, to show a device works: a virtio-blk read of one sector into `buf`
 * (512 bytes; false unless status OK), and a virtio-rng read of `len` bytes. */
bool blk_read(struct vq *q, uint64_t sector, void *buf);
bool rng_read(struct vq *q, void *buf, uint32_t len);

#endif
