/* Save and restore of the x86 platform devices a snapshot carries besides the 16550A
 * (test_device_state.c): the i8042 (controller RAM, keyboard mode, bytes waiting in its output
 * queue), the CMOS RTC (index and RAM), the ACPI PM device (an empty section) and the boot timer
 * (whether and when the guest said it was up); and arm64's PL061 GPIO controller (registers,
 * the buttons' lines, latched edges, the interrupt level). A state put into a device through its
 * registers comes out of a fresh device restored from it: the guest reads the same bytes, and
 * saving again gives the same bytes. Damaged sections are refused and change nothing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/device.h"
#include "base/state.h"
#include "devices/acpi_pm.h"
#include "devices/boot_timer.h"
#include "devices/i8042.h"
#include "devices/pl061.h"
#include "devices/rtc_cmos.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static void save(struct vm_device *dev, struct state_writer *w)
{
	state_writer_init(w);
	assert_int_equal(vm_device_save(dev, w), 0);
	assert_int_equal(state_writer_status(w), 0);
}

static int restore(struct vm_device *dev, const void *buf, size_t len)
{
	struct state_reader r;
	int ret;

	state_reader_init(&r, buf, len);
	ret = vm_device_restore(dev, &r);
	if (!ret && !state_reader_at_end(&r))
		ret = -EBADMSG;
	return ret;
}

/* Restored into `fresh`, the state saves to the same bytes. */
static void assert_round_trip(struct vm_device *dev, struct vm_device *fresh)
{
	struct state_writer a, b;

	save(dev, &a);
	assert_int_equal(restore(fresh, a.buf, a.len), 0);
	save(fresh, &b);
	assert_int_equal(a.len, b.len);
	assert_memory_equal(a.buf, b.buf, a.len);
	state_writer_free(&a);
	state_writer_free(&b);
}

/* Every truncation of `dev`'s section is refused and leaves `victim` saving what it saved. */
static void assert_truncations_refused(struct vm_device *dev, struct vm_device *victim)
{
	struct state_writer w, before, after;

	save(dev, &w);
	save(victim, &before);
	for (size_t cut = 0; cut < w.len; cut++)
		assert_int_not_equal(restore(victim, w.buf, cut), 0);
	save(victim, &after);
	assert_int_equal(before.len, after.len);
	assert_memory_equal(before.buf, after.buf, before.len);
	state_writer_free(&w);
	state_writer_free(&before);
	state_writer_free(&after);
}

static void kbd_command(struct i8042 *k, uint8_t v)
{
	i8042_cmd_ops.write(k, 0, &v, 1);
}

static void kbd_data_out(struct i8042 *k, uint8_t v)
{
	i8042_data_ops.write(k, 0, &v, 1);
}

static uint8_t kbd_data_in(struct i8042 *k)
{
	uint8_t v = 0;

	i8042_data_ops.read(k, 0, &v, 1);
	return v;
}

static void test_i8042(void **state)
{
	struct i8042 *a = i8042_create(NULL, NULL), *b = i8042_create(NULL, NULL);
	struct i8042 *c = i8042_create(NULL, NULL);
	static const uint8_t keys[] = {0x1e, 0x9e, 0x30};
	struct state_writer w;
	uint8_t *bad;

	assert_non_null(a);
	assert_non_null(b);
	assert_non_null(c);
	/* Controller RAM byte 5 (command 0x65 writes RAM[5]) and three keystrokes queued. */
	kbd_command(a, 0x65);
	kbd_data_out(a, 0x5a);
	assert_int_equal(i8042_inject_scancodes(a, keys, sizeof(keys)), 0);
	assert_round_trip(i8042_device(a), i8042_device(b));
	/* The restored controller hands the guest the same bytes, in order. */
	for (size_t i = 0; i < sizeof(keys); i++)
		assert_int_equal(kbd_data_in(b), keys[i]);
	kbd_command(b, 0x25); /* read RAM[5] */
	assert_int_equal(kbd_data_in(b), 0x5a);

	assert_truncations_refused(i8042_device(a), i8042_device(c));
	/* A queue longer than the controller holds. */
	save(i8042_device(a), &w);
	bad = malloc(w.len);
	assert_non_null(bad);
	memcpy(bad, w.buf, w.len);
	/* payload: 32 RAM, outport, 3 flags, pending, last_read, scanning, set, kbd pending,
	 * last sent, then the u32 count */
	bad[STATE_SECTION_HEADER_SIZE + 32 + 10] = 200;
	assert_int_equal(restore(i8042_device(c), bad, w.len), -EBADMSG);
	memcpy(bad, w.buf, w.len);
	bad[STATE_SECTION_HEADER_SIZE + 32 + 7] = 9; /* scancode set 9 */
	assert_int_equal(restore(i8042_device(c), bad, w.len), -EBADMSG);
	free(bad);
	state_writer_free(&w);
	i8042_destroy(a);
	i8042_destroy(b);
	i8042_destroy(c);
}

static void cmos_write(struct rtc_cmos *rtc, uint8_t index, uint8_t v)
{
	rtc_cmos_ops.write(rtc, 0, &index, 1);
	rtc_cmos_ops.write(rtc, 1, &v, 1);
}

static uint8_t cmos_read(struct rtc_cmos *rtc, uint8_t index)
{
	uint8_t v = 0;

	rtc_cmos_ops.write(rtc, 0, &index, 1);
	rtc_cmos_ops.read(rtc, 1, &v, 1);
	return v;
}

static void test_rtc_cmos(void **state)
{
	struct rtc_cmos *a = rtc_cmos_create(), *b = rtc_cmos_create(), *c = rtc_cmos_create();
	struct state_writer w;

	cmos_write(a, 0x40, 0x99);
	cmos_write(a, 0x7f, 0x11);
	assert_round_trip(rtc_cmos_device(a), rtc_cmos_device(b));
	assert_int_equal(cmos_read(b, 0x40), 0x99);
	assert_int_equal(cmos_read(b, 0x7f), 0x11);
	assert_truncations_refused(rtc_cmos_device(a), rtc_cmos_device(c));
	save(rtc_cmos_device(a), &w);
	w.buf[STATE_SECTION_HEADER_SIZE] = 0x80; /* an index with the NMI bit */
	assert_int_equal(restore(rtc_cmos_device(c), w.buf, w.len), -EBADMSG);
	state_writer_free(&w);
	rtc_cmos_destroy(a);
	rtc_cmos_destroy(b);
	rtc_cmos_destroy(c);
}

static void test_acpi_pm(void **state)
{
	struct acpi_pm *a = acpi_pm_create(NULL), *b = acpi_pm_create(NULL);
	struct state_writer w;

	assert_round_trip(acpi_pm_device(a), acpi_pm_device(b));
	save(acpi_pm_device(a), &w);
	assert_int_equal(w.len, STATE_SECTION_HEADER_SIZE);
	/* Another device's section in its place is refused. */
	w.buf[0] = VM_DEVICE_RTC_CMOS;
	assert_int_equal(restore(acpi_pm_device(b), w.buf, w.len), -EBADMSG);
	state_writer_free(&w);
	acpi_pm_destroy(a);
	acpi_pm_destroy(b);
}

static void test_boot_timer(void **state)
{
	struct boot_timer *a = boot_timer_create(), *b = boot_timer_create();
	struct boot_timer *c = boot_timer_create();
	struct state_writer w;
	uint64_t us = 0;

	/* Not yet recorded: the restored one has nothing either. */
	assert_round_trip(boot_timer_device(a), boot_timer_device(b));
	assert_false(boot_timer_get_us(b, &us));
	/* Recorded (a guest's write to the timer, through its MMIO ops). */
	save(boot_timer_device(a), &w);
	w.buf[STATE_SECTION_HEADER_SIZE] = 1;
	w.buf[STATE_SECTION_HEADER_SIZE + 1] = 0x40;
	w.buf[STATE_SECTION_HEADER_SIZE + 2] = 0x42;
	w.buf[STATE_SECTION_HEADER_SIZE + 3] = 0x0f;
	assert_int_equal(restore(boot_timer_device(b), w.buf, w.len), 0);
	assert_true(boot_timer_get_us(b, &us));
	assert_int_equal(us, 0x0f4240); /* 1 s */
	assert_round_trip(boot_timer_device(b), boot_timer_device(c));
	assert_true(boot_timer_get_us(c, &us));
	assert_int_equal(us, 1000000);
	w.buf[STATE_SECTION_HEADER_SIZE] = 2; /* not a boolean */
	assert_int_equal(restore(boot_timer_device(a), w.buf, w.len), -EBADMSG);
	assert_false(boot_timer_get_us(a, &us));
	state_writer_free(&w);
	boot_timer_destroy(a);
	boot_timer_destroy(b);
	boot_timer_destroy(c);
}

static uint8_t gpio_read(struct pl061 *g, uint64_t offset)
{
	uint8_t v = 0;

	pl061_ops.read(g, offset, &v, 1);
	return v;
}

static void gpio_write(struct pl061 *g, uint64_t offset, uint8_t v)
{
	pl061_ops.write(g, offset, &v, 1);
}

struct irq_probe {
	int calls;
	bool level;
};

static void probe_set_level(void *ctx, uint32_t gsi, bool level)
{
	struct irq_probe *p = ctx;

	(void)gsi;
	p->calls++;
	p->level = level;
}

/* A guest's set-up (gpio-keys: lines 0-2 inputs, both edges, unmasked; line 7 an output driven
 * high) and a button press latched but not yet cleared: the restored controller reads the same
 * registers, still has the edge latched, raises its line, and clears it as the guest would. */
static void test_pl061(void **state)
{
	struct irq_probe pa = {0}, pb = {0};
	struct irq_line la = {.set_level = probe_set_level, .ctx = &pa, .gsi = 2};
	struct irq_line lb = {.set_level = probe_set_level, .ctx = &pb, .gsi = 2};
	struct pl061 *a = pl061_create(&la), *b = pl061_create(&lb), *c = pl061_create(NULL);
	static const uint64_t regs[] = {0x3fc, 0x400, 0x404, 0x408, 0x40c,
					0x410, 0x414, 0x418, 0x420};
	struct state_writer w;

	(void)state;
	gpio_write(a, 0x400, 0x80);  /* DIR: line 7 out */
	gpio_write(a, 0x408, 0x07);  /* IBE */
	gpio_write(a, 0x410, 0x07);  /* IE */
	gpio_write(a, 0x200, 0x80);  /* DATA, masked to line 7 */
	gpio_write(a, 0x420, 0x10);  /* AFSEL */
	pl061_set_input(a, 1, true); /* Alt pressed */
	assert_true(pa.level);
	assert_int_equal(gpio_read(a, 0x418), 0x02);
	assert_int_equal(gpio_read(a, 0x3fc), 0x82);

	save(pl061_device(a), &w);
	assert_int_equal(restore(pl061_device(b), w.buf, w.len), 0);
	for (size_t i = 0; i < sizeof(regs) / sizeof(regs[0]); i++)
		assert_int_equal(gpio_read(b, regs[i]), gpio_read(a, regs[i]));
	assert_true(pb.calls > 0);
	assert_true(pb.level);
	gpio_write(b, 0x41c, 0x02); /* the guest's handler clears the edge */
	assert_false(pb.level);
	assert_int_equal(gpio_read(b, 0x418), 0);
	/* Released on the restored one: the edge latches again (both edges). */
	pl061_set_input(b, 1, false);
	assert_true(pb.level);
	assert_round_trip(pl061_device(b), pl061_device(c));
	assert_truncations_refused(pl061_device(a), pl061_device(c));
	/* Another device's section is refused. */
	w.buf[0] ^= 1;
	assert_int_equal(restore(pl061_device(c), w.buf, w.len), -EBADMSG);
	state_writer_free(&w);
	pl061_destroy(a);
	pl061_destroy(b);
	pl061_destroy(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_i8042),   cmocka_unit_test(test_rtc_cmos),
	    cmocka_unit_test(test_acpi_pm), cmocka_unit_test(test_boot_timer),
	    cmocka_unit_test(test_pl061),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
