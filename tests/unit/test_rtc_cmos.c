/* The CMOS RTC: the time of an injected clock in every encoding register B allows, the status
 * registers Linux's rtc-cmos and mc146818 code check, the CMOS RAM, and hostile accesses. */
#include "devices/rtc_cmos.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define INDEX 0
#define DATA  1

#define REG_SECONDS 0x00
#define REG_MINUTES 0x02
#define REG_HOURS   0x04
#define REG_WEEKDAY 0x06
#define REG_DAY	    0x07
#define REG_MONTH   0x08
#define REG_YEAR    0x09
#define REG_A	    0x0a
#define REG_B	    0x0b
#define REG_C	    0x0c
#define REG_D	    0x0d
#define REG_CENTURY 0x32

#define B_24H	 0x02
#define B_BINARY 0x04

/* Thursday 2024-02-29 13:05:09 UTC */
static time_t leap_day_afternoon(void)
{
	return 1709211909;
}

/* Friday 1999-12-31 00:59:58 UTC: midnight hour, last century */
static time_t new_years_eve(void)
{
	return 946601998;
}

static uint8_t cmos_read(struct rtc_cmos *rtc, uint8_t reg)
{
	uint8_t v = 0xa5;

	rtc_cmos_ops.write(rtc, INDEX, &reg, 1);
	rtc_cmos_ops.read(rtc, DATA, &v, 1);
	return v;
}

static void cmos_write(struct rtc_cmos *rtc, uint8_t reg, uint8_t v)
{
	rtc_cmos_ops.write(rtc, INDEX, &reg, 1);
	rtc_cmos_ops.write(rtc, DATA, &v, 1);
}

static int setup(void **state)
{
	struct rtc_cmos *rtc = rtc_cmos_create();

	assert_non_null(rtc);
	rtc_cmos_set_clock(rtc, leap_day_afternoon);
	*state = rtc;
	return 0;
}

static int teardown(void **state)
{
	rtc_cmos_destroy(*state);
	return 0;
}

static void test_default_is_bcd_24h(void **state)
{
	struct rtc_cmos *rtc = *state;

	assert_int_equal(cmos_read(rtc, REG_B), 0x02);
	assert_int_equal(cmos_read(rtc, REG_SECONDS), 0x09);
	assert_int_equal(cmos_read(rtc, REG_MINUTES), 0x05);
	assert_int_equal(cmos_read(rtc, REG_HOURS), 0x13);
	assert_int_equal(cmos_read(rtc, REG_WEEKDAY), 0x05); /* Sunday is 1 */
	assert_int_equal(cmos_read(rtc, REG_DAY), 0x29);
	assert_int_equal(cmos_read(rtc, REG_MONTH), 0x02);
	assert_int_equal(cmos_read(rtc, REG_YEAR), 0x24);
	assert_int_equal(cmos_read(rtc, REG_CENTURY), 0x20);
}

static void test_binary_24h(void **state)
{
	struct rtc_cmos *rtc = *state;

	cmos_write(rtc, REG_B, B_24H | B_BINARY);
	assert_int_equal(cmos_read(rtc, REG_B), B_24H | B_BINARY);
	assert_int_equal(cmos_read(rtc, REG_SECONDS), 9);
	assert_int_equal(cmos_read(rtc, REG_MINUTES), 5);
	assert_int_equal(cmos_read(rtc, REG_HOURS), 13);
	assert_int_equal(cmos_read(rtc, REG_WEEKDAY), 5);
	assert_int_equal(cmos_read(rtc, REG_DAY), 29);
	assert_int_equal(cmos_read(rtc, REG_MONTH), 2);
	assert_int_equal(cmos_read(rtc, REG_YEAR), 24);
	assert_int_equal(cmos_read(rtc, REG_CENTURY), 20);
}

static void test_12_hour_modes(void **state)
{
	struct rtc_cmos *rtc = *state;

	/* 13:05 is 1 PM: the PM flag is bit 7 of the hours register. */
	cmos_write(rtc, REG_B, 0x00);
	assert_int_equal(cmos_read(rtc, REG_HOURS), 0x81);
	cmos_write(rtc, REG_B, B_BINARY);
	assert_int_equal(cmos_read(rtc, REG_HOURS), 0x81);

	/* 00:59 is 12 AM. */
	rtc_cmos_set_clock(rtc, new_years_eve);
	assert_int_equal(cmos_read(rtc, REG_HOURS), 12);
	cmos_write(rtc, REG_B, 0x00);
	assert_int_equal(cmos_read(rtc, REG_HOURS), 0x12);
	cmos_write(rtc, REG_B, B_24H);
	assert_int_equal(cmos_read(rtc, REG_HOURS), 0x00);
	assert_int_equal(cmos_read(rtc, REG_SECONDS), 0x58);
	assert_int_equal(cmos_read(rtc, REG_MINUTES), 0x59);
	assert_int_equal(cmos_read(rtc, REG_WEEKDAY), 0x06);
	assert_int_equal(cmos_read(rtc, REG_DAY), 0x31);
	assert_int_equal(cmos_read(rtc, REG_MONTH), 0x12);
	assert_int_equal(cmos_read(rtc, REG_YEAR), 0x99);
	assert_int_equal(cmos_read(rtc, REG_CENTURY), 0x19);
}

static void test_status_registers(void **state)
{
	struct rtc_cmos *rtc = *state;

	assert_int_equal(cmos_read(rtc, REG_A) & 0x80, 0); /* never updating */
	assert_int_equal(cmos_read(rtc, REG_C), 0x00);
	assert_int_equal(cmos_read(rtc, REG_D), 0x80);
	/* Divider and rate bits are the guest's; UIP, C and D are not writable. */
	cmos_write(rtc, REG_A, 0xa6);
	assert_int_equal(cmos_read(rtc, REG_A), 0x26);
	cmos_write(rtc, REG_C, 0xff);
	cmos_write(rtc, REG_D, 0x00);
	assert_int_equal(cmos_read(rtc, REG_C), 0x00);
	assert_int_equal(cmos_read(rtc, REG_D), 0x80);
}

static void test_time_follows_clock_and_ignores_writes(void **state)
{
	struct rtc_cmos *rtc = *state;

	cmos_write(rtc, REG_SECONDS, 0x42);
	cmos_write(rtc, REG_YEAR, 0x77);
	assert_int_equal(cmos_read(rtc, REG_SECONDS), 0x09);
	assert_int_equal(cmos_read(rtc, REG_YEAR), 0x24);
	rtc_cmos_set_clock(rtc, new_years_eve);
	assert_int_equal(cmos_read(rtc, REG_YEAR), 0x99);

	/* Back to the host clock: some year of this century. */
	rtc_cmos_set_clock(rtc, NULL);
	assert_int_equal(cmos_read(rtc, REG_CENTURY), 0x20);
	assert_int_equal(cmos_read(rtc, REG_D), 0x80);
}

static void test_cmos_ram(void **state)
{
	struct rtc_cmos *rtc = *state;

	for (int reg = 0x0e; reg < 0x80; reg++)
		if (reg != REG_CENTURY)
			cmos_write(rtc, (uint8_t)reg, (uint8_t)(reg ^ 0x5a));
	for (int reg = 0x0e; reg < 0x80; reg++)
		if (reg != REG_CENTURY)
			assert_int_equal(cmos_read(rtc, (uint8_t)reg), reg ^ 0x5a);
	/* Alarm registers are plain storage (no alarm interrupt). */
	cmos_write(rtc, 0x01, 0x30);
	assert_int_equal(cmos_read(rtc, 0x01), 0x30);
	/* Bit 7 of the index is the NMI mask: it selects the same register. */
	cmos_write(rtc, 0x80 | 0x40, 0x11);
	assert_int_equal(cmos_read(rtc, 0x40), 0x11);
	assert_int_equal(cmos_read(rtc, 0x80 | REG_YEAR), 0x24);
}

static void test_wide_accesses(void **state)
{
	struct rtc_cmos *rtc = *state;
	uint8_t data[8];
	uint16_t index_and_value = (uint16_t)(0x77 << 8 | 0x50);

	/* outw 0x70: index 0x50, then 0x77 to the data port. */
	rtc_cmos_ops.write(rtc, INDEX, &index_and_value, 2);
	assert_int_equal(cmos_read(rtc, 0x50), 0x77);
	/* inw 0x70: the (write-only) index port, then the data of the selected register. */
	memset(data, 0xee, sizeof(data));
	rtc_cmos_ops.read(rtc, INDEX, data, 4);
	assert_int_equal(data[1], 0x77);
	assert_int_equal(data[2] | data[3], 0);
	assert_int_equal(data[4], 0xee);
	memset(data, 0xee, sizeof(data));
	rtc_cmos_ops.read(rtc, 5, data, 8);
	for (int i = 0; i < 8; i++)
		assert_int_equal(data[i], 0);
}

static void test_fuzz(void **state)
{
	struct rtc_cmos *rtc = *state;
	static const uint32_t lens[] = {0, 1, 2, 4, 8};
	uint8_t data[8];

	srand(146818);
	for (int i = 0; i < 200000; i++) {
		uint64_t offset =
		    rand() % 8 ? (uint64_t)(rand() % 3) : ~0ULL - (uint64_t)(rand() % 3);
		uint32_t len = lens[rand() % 5];

		for (size_t j = 0; j < sizeof(data); j++)
			data[j] = (uint8_t)rand();
		if (rand() % 2)
			rtc_cmos_ops.read(rtc, offset, data, len);
		else
			rtc_cmos_ops.write(rtc, offset, data, len);
	}
	/* Whatever the guest did, C and D read as documented. */
	assert_int_equal(cmos_read(rtc, REG_C), 0x00);
	assert_int_equal(cmos_read(rtc, REG_D), 0x80);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_default_is_bcd_24h, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_binary_24h, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_12_hour_modes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_status_registers, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_time_follows_clock_and_ignores_writes, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_cmos_ram, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_wide_accesses, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fuzz, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
