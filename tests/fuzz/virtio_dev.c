/* The device harnesses' driver (see virtio_dev.h). */
#include "fuzz/virtio_dev.h"
#include "base/event_loop.h"
#include "base/log.h"
#include "virtio/virtio.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { OP_KICK, OP_CONFIG_READ, OP_CONFIG_WRITE, OP_KICK_ALL, NR_OPS };

void fuzz_quiet_log(void)
{
	log_set_level(LOG_ERROR);
	if (log_set_path("/dev/null"))
		abort();
}

static void signal_used(struct virtio_device *dev, uint16_t q)
{
	((struct fuzz_dev *)dev->transport)->signals++;
}

static void signal_config(struct virtio_device *dev)
{
	((struct fuzz_dev *)dev->transport)->signals++;
}

static void fail(struct virtio_device *dev, int q, const char *reason)
{
	((struct fuzz_dev *)dev->transport)->fails++;
	dev->failed = true;
}

struct call {
	struct virtio_device *dev;
	uint16_t q;
	int ret;
};

static void call_activate(void *arg)
{
	struct call *c = arg;

	c->ret = c->dev->ops->activate(c->dev);
}

static void call_notify(void *arg)
{
	struct call *c = arg;

	c->dev->ops->queue_notify(c->dev, c->q);
}

static void call_reset(void *arg)
{
	struct call *c = arg;

	c->dev->ops->reset(c->dev);
}

static void on_worker(struct fuzz_dev *f, void (*fn)(void *), struct call *c)
{
	if (event_loop_call(f->loop, fn, c))
		abort();
}

void fuzz_dev_init(struct fuzz_dev *f, struct virtio_device *dev, const char *loop_name)
{
	struct guest_region layout[] = {{.gpa = 0, .size = FUZZ_DEV_RAM},
					{.gpa = FUZZ_DEV_RAM2, .size = FUZZ_DEV_RAM2_SIZE}};

	if (dev->ops->nr_queues > FUZZ_DEV_MAX_QUEUES)
		abort();
	fuzz_ram_map(&f->mem, layout, 2);
	f->loop = event_loop_create(loop_name);
	if (!f->loop)
		abort();
	f->dev = dev;
	dev->mem = &f->mem;
	dev->queues = f->queues;
	dev->loop = f->loop;
	dev->transport = f;
	dev->signal_used = signal_used;
	dev->signal_config = signal_config;
	dev->fail = fail;
}

/* A config space access as the transport passes it on: within config_size, 1, 2 or 4 bytes. */
static bool config_range(struct virtio_device *dev, uint8_t off, uint8_t len_code, uint32_t *len)
{
	*len = 1u << (len_code & 3);
	if (*len == 8)
		*len = 4;
	return off + *len <= dev->ops->config_size;
}

void fuzz_dev_run(struct fuzz_dev *f, struct fuzz_input *in)
{
	struct virtio_device *dev = f->dev;
	const struct virtio_device_ops *ops = dev->ops;
	uint64_t mask = fuzz_u32(in);
	struct call c = {.dev = dev};
	uint8_t sizes[FUZZ_DEV_MAX_QUEUES], nr_ops;
	const uint8_t *prog;
	size_t prog_len;
	bool ok = true;

	for (int q = 0; q < ops->nr_queues; q++)
		sizes[q] = fuzz_u8(in);
	/* The program is kept aside, RAM is what follows it: ops take their arguments from the
	 * program's own bytes. */
	nr_ops = fuzz_u8(in) & 15;
	prog = in->data;
	prog_len = in->len < 8u * nr_ops ? in->len : 8u * nr_ops;
	in->data += prog_len;
	in->len -= prog_len;

	memset(f->mem.regions[0].hva, 0, FUZZ_DEV_RAM);
	memset(f->mem.regions[1].hva, 0, FUZZ_DEV_RAM2_SIZE);
	fuzz_bytes(in, f->mem.regions[0].hva, FUZZ_DEV_RAM);
	fuzz_bytes(in, f->mem.regions[1].hva, FUZZ_DEV_RAM2_SIZE);

	/* DRIVER_OK as the virtio core does it: features final, ready queues activated. A queue
	 * the core would refuse makes it fail the device instead of activating it. */
	dev->features = ((ops->features ? ops->features(dev) : 0) | 1ULL << VIRTIO_F_VERSION_1 |
			 1ULL << VIRTIO_F_INDIRECT_DESC | 1ULL << VIRTIO_F_EVENT_IDX) &
			(mask | 1ULL << VIRTIO_F_VERSION_1);
	for (int q = 0; q < ops->nr_queues; q++) {
		struct virtq *vq = &f->queues[q];

		memset(vq, 0, sizeof(*vq));
		vq->max_size = ops->queue_max_size;
		vq->size = (uint16_t)(1u << (sizes[q] & 7));
		vq->desc_gpa = 0x400ULL * q;
		vq->avail_gpa = 0x400ULL * q + 0x100;
		vq->used_gpa = 0x400ULL * q + 0x200;
		vq->ready = true;
		if (virtq_activate(vq, &f->mem, dev->features))
			ok = false;
	}
	if (ok) {
		on_worker(f, call_activate, &c);
		ok = c.ret == 0;
	}

	struct fuzz_input p = {prog, prog_len};
	for (unsigned i = 0; ok && i < nr_ops; i++) {
		uint8_t code = fuzz_u8(&p), a = fuzz_u8(&p), b = fuzz_u8(&p);
		uint32_t value = fuzz_u32(&p), len;

		fuzz_u8(&p); /* an op is 8 bytes */

		switch (code % NR_OPS) {
		case OP_KICK:
			c.q = a % ops->nr_queues;
			if (f->before_kick)
				f->before_kick(f, c.q);
			on_worker(f, call_notify, &c);
			break;
		case OP_KICK_ALL:
			for (c.q = 0; c.q < ops->nr_queues; c.q++) {
				if (f->before_kick)
					f->before_kick(f, c.q);
				on_worker(f, call_notify, &c);
			}
			break;
		case OP_CONFIG_READ:
			if (ops->config_read && config_range(dev, a, b, &len))
				ops->config_read(dev, a, &value, len);
			break;
		case OP_CONFIG_WRITE:
			if (ops->config_write && config_range(dev, a, b, &len))
				ops->config_write(dev, a, &value, len);
			break;
		}
	}

	on_worker(f, call_reset, &c);
	for (int q = 0; q < ops->nr_queues; q++)
		virtq_reset(&f->queues[q]);
	dev->failed = false;
}
