/* The boot timer: how long the guest took to boot, as the guest itself says. Its userspace writes
 * the byte 123 at offset 0 of this one-page MMIO device once it is up (Firecracker's convention:
 * `devmem ADDR 8 123` from init); the first such write records the time since skiff's process
 * started and logs "guest boot time: X ms ...". Later writes, other values, other sizes and
 * other offsets are ignored; reads return 0. Nothing describes it to the guest (no ACPI or device
 * tree node): it sits at a fixed address, per architecture, that is neither RAM nor another
 * device's:
 *   x86_64  0xcffff000 (X86_BOOT_TIMER_ADDR: the page below the virtio-mmio window)
 *   arm64   0x09001000 (ARM64_BOOT_TIMER_BASE: the page after the UART) */
#ifndef SKIFF_DEVICES_BOOT_TIMER_H
#define SKIFF_DEVICES_BOOT_TIMER_H

#include "bus/bus.h"

#include <stdbool.h>
#include <stdint.h>

#define BOOT_TIMER_SIZE	 0x1000
#define BOOT_TIMER_MAGIC 123

struct boot_timer;

/* NULL when out of memory. */
struct boot_timer *boot_timer_create(void);
void boot_timer_destroy(struct boot_timer *bt);
/* Its entry for the VM's device list (base/device.h), whose destroy op frees it; NULL for
 * NULL. */
struct vm_device *boot_timer_device(struct boot_timer *bt);
/* The boot timer whose entry `dev` is (a VM_DEVICE_BOOT_TIMER device from the list). */
const struct boot_timer *boot_timer_of(const struct vm_device *dev);

/* Called once, on the vCPU thread of the guest's first boot-timer write, after the time is
 * recorded: `boot_us` is that time (microseconds from process start). Set before the guest runs. */
void boot_timer_on_boot(struct boot_timer *bt, void (*fn)(void *opaque, uint64_t boot_us),
			void *opaque);

/* True, with *us set to microseconds from process start, once the guest has signalled. Safe from
 * any thread. */
bool boot_timer_get_us(const struct boot_timer *bt, uint64_t *us);

/* opaque is the device; a BOOT_TIMER_SIZE range. */
extern const struct bus_device_ops boot_timer_ops;

#endif
