/* An i8042 PS/2 controller with an AT keyboard and no mouse: enough for Linux's i8042 and atkbd
 * drivers to probe it, for `reboot=k` (command 0xfe, or an output port write with bit 0 clear,
 * asks the VM to reset) and for injecting keystrokes. The data port (0x60) and the command and
 * status port (0x64) are two one-byte ranges with their own ops tables. IRQ 1 is driven as a
 * level: high while a keyboard-side byte waits in the output buffer and the controller's
 * keyboard interrupt is enabled.
 *
 * There is no auxiliary (mouse) port, and the controller says so the way one without it does:
 * the 0xd3 loopback hands its byte back as keyboard-side data (nothing marks it as aux), the
 * aux interface test (0xa9) reports its clock line stuck low (0x01), and the aux enable
 * command (0xa8) leaves the CTR's aux-disable bit set. Linux's i8042 driver takes the first
 * two as "no aux port" at once: a loopback reply without the aux status bit is a failed loop
 * (left unread), and the byte it then reads as the 0xa9 result (that loop byte, or 0x01 with
 * `i8042.noloop`) is neither 0x00 nor a chipset's 0xfa/0xff, so it never starts its 250 ms
 * wait for an IRQ 12. Bytes sent to the mouse with 0xd4 vanish with the status timeout bit
 * set, as when no device clocks them in. */
#ifndef SKIFF_DEVICES_I8042_H
#define SKIFF_DEVICES_I8042_H

#include "bus/bus.h"
#include "base/irq.h"
#include "base/power.h"

#include <stddef.h>
#include <stdint.h>

/* Bytes the output queue holds: as many as Linux's i8042 driver drains in one flush. */
#define I8042_QUEUE_SIZE 16

struct i8042;

/* `kbd_irq` and `power` are copied (NULL: not connected). NULL when out of memory. */
struct i8042 *i8042_create(const struct irq_line *kbd_irq, const struct power_ctl *power);
void i8042_destroy(struct i8042 *kbd);
/* Its entry for the VM's device list (base/device.h), whose destroy op frees it; NULL for
 * NULL. */
struct vm_device *i8042_device(struct i8042 *k);

/* Queue scancodes as if typed on the keyboard, byte for byte: the caller picks the set (set 1
 * while the guest keeps the controller's translation on, as Linux does here). All or nothing:
 * 0, -ENOSPC when the output queue lacks room for all n, -EAGAIN while the guest has the
 * keyboard disabled (scanning off with 0xf5, or the controller's keyboard port off with 0xad),
 * -EINVAL for n > 0 without codes. */
int i8042_inject_scancodes(struct i8042 *kbd, const uint8_t *codes, size_t n);

/* opaque is the device; both ranges are one byte long. */
extern const struct bus_device_ops i8042_data_ops; /* port 0x60 */
extern const struct bus_device_ops i8042_cmd_ops;  /* port 0x64 */

#endif
