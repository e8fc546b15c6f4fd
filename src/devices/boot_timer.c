#include "devices/boot_timer.h"
#include "base/device.h"
#include "base/log.h"
#include "base/state.h"
#include "base/uptime.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

enum { UNSET, RECORDING, RECORDED };

struct boot_timer {
	struct vm_device dev; /* its entry in the VM's device list */
	int state; /* UNSET -> RECORDING (one writer won) -> RECORDED (boot_us is valid) */
	uint64_t boot_us;
	void (*on_boot)(void *opaque, uint64_t boot_us);
	void *on_boot_opaque;
};

static void boot_timer_device_destroy(struct vm_device *dev)
{
	boot_timer_destroy((struct boot_timer *)dev);
}

/* {"boot_time_us": N} once the guest said it is up; nothing before. */
static json_t *boot_timer_device_stats(struct vm_device *dev)
{
	uint64_t us;
	json_t *o;

	if (!boot_timer_get_us((struct boot_timer *)dev, &us))
		return NULL;
	o = json_object();
	json_object_set_new(o, "boot_time_us", json_integer((json_int_t)us));
	return o;
}

#define BOOT_TIMER_STATE_VERSION 1

/* Whether the guest has said it is up, and when: a restored guest does not say it again. */
static int boot_timer_device_save(struct vm_device *dev, struct state_writer *w)
{
	struct boot_timer *bt = (struct boot_timer *)dev;
	bool recorded = __atomic_load_n(&bt->state, __ATOMIC_ACQUIRE) == RECORDED;

	state_begin(w, VM_DEVICE_BOOT_TIMER, BOOT_TIMER_STATE_VERSION);
	state_put_bool(w, recorded);
	state_put_u64(w, recorded ? bt->boot_us : 0);
	state_end(w);
	return state_writer_status(w);
}

static int boot_timer_device_restore(struct vm_device *dev, struct state_reader *r)
{
	struct boot_timer *bt = (struct boot_timer *)dev;
	bool recorded = false;
	uint64_t us = 0;
	uint16_t version;

	if (state_open(r, VM_DEVICE_BOOT_TIMER, BOOT_TIMER_STATE_VERSION, &version))
		return state_reader_status(r);
	state_get_bool(r, &recorded);
	state_get_u64(r, &us);
	if (state_close(r))
		return state_reader_status(r);
	bt->boot_us = us;
	__atomic_store_n(&bt->state, recorded ? RECORDED : UNSET, __ATOMIC_RELEASE);
	return 0;
}

static const struct vm_device_ops boot_timer_device_ops = {
	.name = "boot-timer",
	.destroy = boot_timer_device_destroy,
	.stats = boot_timer_device_stats,
	.save = boot_timer_device_save,
	.restore = boot_timer_device_restore,
};

struct boot_timer *boot_timer_create(void)
{
	struct boot_timer *bt = calloc(1, sizeof(*bt));

	if (bt)
		vm_device_init(&bt->dev, VM_DEVICE_BOOT_TIMER, &boot_timer_device_ops, NULL);
	return bt;
}

struct vm_device *boot_timer_device(struct boot_timer *bt)
{
	return bt ? &bt->dev : NULL;
}

const struct boot_timer *boot_timer_of(const struct vm_device *dev)
{
	return (const struct boot_timer *)dev;
}

void boot_timer_destroy(struct boot_timer *bt)
{
	free(bt);
}

void boot_timer_on_boot(struct boot_timer *bt, void (*fn)(void *opaque, uint64_t boot_us),
			void *opaque)
{
	bt->on_boot = fn;
	bt->on_boot_opaque = opaque;
}

bool boot_timer_get_us(const struct boot_timer *bt, uint64_t *us)
{
	if (__atomic_load_n(&bt->state, __ATOMIC_ACQUIRE) != RECORDED)
		return false;
	*us = bt->boot_us;
	return true;
}

static void boot_timer_read(void *opaque, uint64_t offset, void *data, uint32_t len)
{
	memset(data, 0, len);
}

static void boot_timer_write(void *opaque, uint64_t offset, const void *data, uint32_t len)
{
	struct boot_timer *bt = opaque;
	uint64_t now = uptime_us();
	int expected = UNSET;

	if (offset != 0 || len != 1 || *(const uint8_t *)data != BOOT_TIMER_MAGIC)
		return;
	/* vCPUs may race here; only the first write counts. */
	if (!__atomic_compare_exchange_n(&bt->state, &expected, RECORDING, false, __ATOMIC_ACQ_REL,
					 __ATOMIC_ACQUIRE))
		return;
	bt->boot_us = now;
	__atomic_store_n(&bt->state, RECORDED, __ATOMIC_RELEASE);
	log_info("guest boot time: %llu ms (to the first userspace write to the boot timer)",
		 (unsigned long long)(now / 1000));
	if (bt->on_boot)
		bt->on_boot(bt->on_boot_opaque, now);
}

const struct bus_device_ops boot_timer_ops = {.read = boot_timer_read, .write = boot_timer_write};
