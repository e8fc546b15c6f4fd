#include "devices/debug_exit.h"
#include "base/device.h"
#include "base/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct debug_exit {
	struct vm_device dev; /* its entry in the VM's device list */
	struct power_ctl power;
};

int debug_exit_status(uint32_t value)
{
	return (int)((((uint64_t)value << 1) | 1) & 0xff);
}

static void de_read(void *opaque, uint64_t offset, void *data, uint32_t len)
{
	memset(data, 0, len);
}

static void de_write(void *opaque, uint64_t offset, const void *data, uint32_t len)
{
	struct debug_exit *d = opaque;
	char why[96];
	uint32_t value = 0;

	/* The bus hands over 1, 2 or 4 bytes for port I/O; anything else is taken as its first
	 * four bytes, little-endian as the guest wrote them. */
	memcpy(&value, data, len < sizeof(value) ? len : sizeof(value));
	snprintf(why, sizeof(why), "debug-exit: the guest wrote 0x%x, exit status %d", value,
		 debug_exit_status(value));
	power_request_exit(&d->power, debug_exit_status(value), why);
}

const struct bus_device_ops debug_exit_ops = {.read = de_read, .write = de_write};

static void debug_exit_device_destroy(struct vm_device *dev)
{
	free((struct debug_exit *)dev);
}

static const struct vm_device_ops debug_exit_device_ops = {
    .name = "debug-exit",
    .destroy = debug_exit_device_destroy,
};

struct debug_exit *debug_exit_create(const struct power_ctl *power)
{
	struct debug_exit *d = calloc(1, sizeof(*d));

	if (!d)
		return NULL;
	if (power)
		d->power = *power;
	vm_device_init(&d->dev, VM_DEVICE_DEBUG_EXIT, &debug_exit_device_ops, NULL);
	return d;
}

struct vm_device *debug_exit_device(struct debug_exit *d)
{
	return d ? &d->dev : NULL;
}
