/* The platform devices a guest reaches by port I/O or MMIO (src/devices/): the 16550A UART,
 * the i8042, the CMOS RTC, the ACPI PM registers, the boot timer and the arm64 PL061 GPIO
 * (portable, built on x86 too), each accessed as the bus hands accesses to them (1, 2, 4 or 8
 * bytes wholly inside the device's range), interleaved with host input (serial bytes, i8042
 * scancodes, GPIO lines). Each input gets fresh devices.
 *
 * Input: 8-byte ops: u8 target, u8 write (bit 0) and len code (bits 1-2), u16 offset, u32
 * value. Targets 0-6 are registers (UART, i8042 data, i8042 command, RTC, ACPI PM, boot timer,
 * PL061); 7 sends the value's 4 bytes as serial input and as scancodes; 8 and 9 set GPIO line
 * `offset` % 10 (lines that do not exist included) to bit 0 of the value. */
#include "fuzz/input.h"
#include "base/log.h"
#include "devices/acpi_pm.h"
#include "devices/boot_timer.h"
#include "devices/i8042.h"
#include "devices/pl061.h"
#include "devices/rtc_cmos.h"
#include "devices/serial_8250.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

static void set_level(void *ctx, uint32_t gsi, bool level)
{
}

static void request_stop(void *ctx, enum vm_stop_reason reason, const char *why)
{
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int out_fd = -1;
	struct fuzz_input in = {data, size};
	struct irq_line irq = {.set_level = set_level, .gsi = 4};
	struct power_ctl power = {.request_stop = request_stop};
	struct serial_8250 *uart;
	struct i8042 *kbd;
	struct rtc_cmos *rtc;
	struct acpi_pm *pm;
	struct boot_timer *bt;
	struct pl061 *gpio;

	if (out_fd < 0) {
		log_set_level(LOG_ERROR);
		out_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
		if (out_fd < 0 || log_set_path("/dev/null"))
			abort();
	}
	uart = serial_8250_create(&irq, out_fd);
	kbd = i8042_create(&irq, &power);
	rtc = rtc_cmos_create();
	pm = acpi_pm_create(&power);
	bt = boot_timer_create();
	gpio = pl061_create(&irq);
	if (!uart || !kbd || !rtc || !pm || !bt || !gpio)
		abort();

	const struct {
		const struct bus_device_ops *ops;
		void *opaque;
		uint32_t size;
	} regs[] = {
	    {&serial_8250_ops, uart, 8}, {&i8042_data_ops, kbd, 1},	 {&i8042_cmd_ops, kbd, 1},
	    {&rtc_cmos_ops, rtc, 2},	 {&acpi_pm_ops, pm, 4},		 {&boot_timer_ops, bt, 0x1000},
	    {&pl061_ops, gpio, PL061_SIZE},
	};
	for (int i = 0; i < 512 && in.len; i++) {
		uint8_t target = fuzz_u8(&in) % 10, mode = fuzz_u8(&in);
		uint32_t len = 1u << ((mode >> 1) & 3), off = fuzz_u16(&in);
		uint32_t value32 = fuzz_u32(&in);
		uint64_t value = value32;
		uint8_t bytes[4];

		memcpy(bytes, &value32, 4);
		if (target < 7) {
			off %= regs[target].size;
			if (off + len > regs[target].size)
				continue; /* the bus would not hand it to this device */
			if (mode & 1)
				regs[target].ops->write(regs[target].opaque, off, &value, len);
			else
				regs[target].ops->read(regs[target].opaque, off, &value, len);
		} else if (target == 7) {
			serial_8250_receive(uart, bytes, 4);
			i8042_inject_scancodes(kbd, bytes, 4);
		} else {
			pl061_set_input(gpio, off % (PL061_NR_LINES + 2), value & 1);
		}
	}
	pl061_destroy(gpio);
	boot_timer_destroy(bt);
	acpi_pm_destroy(pm);
	rtc_cmos_destroy(rtc);
	i8042_destroy(kbd);
	serial_8250_destroy(uart);
	return 0;
}
