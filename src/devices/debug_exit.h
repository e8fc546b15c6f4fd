/* A test device like QEMU's isa-debug-exit (x86 --debug-exit): a guest write of v to its port
 * range ends the VM, and skiff exits with status (v << 1) | 1, so a test kernel reports pass or
 * fail through skiff's own exit status (the low 8 bits of it, as exit(2) keeps them: a test
 * kernel writes a small v). Writes of 1, 2 or 4 bytes anywhere in the range count; reads return
 * 0 and change nothing. Only present when the user asks for it: an ordinary guest probing ports
 * must not be able to end the VM with a status of its choosing. */
#ifndef SKIFF_DEVICES_DEBUG_EXIT_H
#define SKIFF_DEVICES_DEBUG_EXIT_H

#include "base/power.h"
#include "bus/bus.h"

#include <stdint.h>

struct debug_exit;

/* `power` is copied (NULL: writes go nowhere). NULL when out of memory. */
struct debug_exit *debug_exit_create(const struct power_ctl *power);
/* Its entry for the VM's device list (base/device.h), whose destroy op frees it; NULL for
 * NULL. */
struct vm_device *debug_exit_device(struct debug_exit *d);

/* The exit status a written value asks for: ((v << 1) | 1) & 0xff. */
int debug_exit_status(uint32_t value);

/* opaque is the device; any range length (x86 maps 4 bytes at port 0xf4). */
extern const struct bus_device_ops debug_exit_ops;

#endif
