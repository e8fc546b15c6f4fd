/* An MC146818 CMOS real-time clock with its 128 bytes of CMOS RAM, behind an index port (offset
 * 0; bit 7, the NMI mask, is ignored) and a data port (offset 1). The time is the host's, in
 * UTC, read when the guest reads it: the update-in-progress flag is never set and a read is
 * always consistent. The guest chooses BCD or binary and 12- or 24-hour encoding in register B;
 * its writes to the time registers are ignored, since the host's clock is authoritative. No
 * alarm, periodic or update interrupts: register C always reads 0 and IRQ 8 never rises. */
#ifndef SKIFF_DEVICES_RTC_CMOS_H
#define SKIFF_DEVICES_RTC_CMOS_H

#include "bus/bus.h"

#include <stdint.h>
#include <time.h>

struct rtc_cmos;

/* NULL when out of memory. */
struct rtc_cmos *rtc_cmos_create(void);
void rtc_cmos_destroy(struct rtc_cmos *rtc);
/* Its entry for the VM's device list (base/device.h), whose destroy op frees it; NULL for
 * NULL. */
struct vm_device *rtc_cmos_device(struct rtc_cmos *rtc);

/* Sets CMOS RAM byte `index` (not a clock register: 0x0e-0x7f but the century), as a PC's
 * firmware setup would have left it: the memory sizes SeaBIOS reads. 0 or -EINVAL. */
int rtc_cmos_set_ram(struct rtc_cmos *rtc, uint8_t index, uint8_t value);

/* Where the clock reads the time, in seconds since the epoch: for tests. NULL restores the
 * host's CLOCK_REALTIME. */
void rtc_cmos_set_clock(struct rtc_cmos *rtc, time_t (*now)(void));

/* opaque is the device; a two-byte range (index, data). */
extern const struct bus_device_ops rtc_cmos_ops;

#endif
