/* The ACPI power device: the writes Linux makes for poweroff and reset, at the ports the FADT
 * names (arch/x86/layout.h), unsupported sleep states, and hostile accesses. */
#include "devices/acpi_pm.h"
#include "base/log.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

/* The registers, as the FADT hands them to the guest. */
#define SLEEP_CTL (X86_ACPI_SLEEP_CTL - X86_ACPI_PM_PORT)
#define SLEEP_STS (X86_ACPI_SLEEP_STS - X86_ACPI_PM_PORT)
#define RESET_REG (X86_ACPI_RESET_PORT - X86_ACPI_PM_PORT)

/* What Linux's acpi_hw_extended_sleep() writes: SLP_TYP in bits 2-4, SLP_EN is bit 5. */
static uint8_t sleep_value(unsigned type, int enable)
{
	return (uint8_t)(((type << 2) & 0x1c) | (enable ? 0x20 : 0));
}

struct fixture {
	struct acpi_pm *pm;
	int poweroffs, resets, others;
	char why[64];
};

static void fake_request_stop(void *ctx, enum vm_stop_reason reason, const char *why)
{
	struct fixture *f = ctx;

	if (reason == VM_STOP_POWEROFF)
		f->poweroffs++;
	else if (reason == VM_STOP_RESET)
		f->resets++;
	else
		f->others++;
	strncpy(f->why, why, sizeof(f->why) - 1);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct power_ctl power = {.request_stop = fake_request_stop, .ctx = f};

	assert_non_null(f);
	f->pm = acpi_pm_create(&power);
	assert_non_null(f->pm);
	memset(&power, 0, sizeof(power)); /* the device keeps its own copy */
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	acpi_pm_destroy(f->pm);
	assert_int_equal(f->others, 0);
	free(f);
	return 0;
}

static void wr(struct fixture *f, uint64_t offset, uint8_t v)
{
	acpi_pm_ops.write(f->pm, offset, &v, 1);
}

static void test_header_agrees_with_layout(void **state)
{
	assert_int_equal(ACPI_PM_SLEEP_CTL_OFFSET, SLEEP_CTL);
	assert_int_equal(ACPI_PM_SLEEP_STS_OFFSET, SLEEP_STS);
	assert_int_equal(ACPI_PM_RESET_OFFSET, RESET_REG);
	assert_int_equal(ACPI_PM_LEN, X86_ACPI_PM_LEN);
	assert_true(RESET_REG < X86_ACPI_PM_LEN && SLEEP_CTL < X86_ACPI_PM_LEN);
}

static void test_s5_powers_off(void **state)
{
	struct fixture *f = *state;

	/* Linux clears WAK_STS first, then writes the type with SLP_EN. */
	wr(f, SLEEP_STS, 0x80);
	assert_int_equal(f->poweroffs, 0);
	wr(f, SLEEP_CTL, sleep_value(X86_ACPI_S5_SLP_TYP, 1));
	assert_int_equal(f->poweroffs, 1);
	assert_int_equal(f->resets, 0);
	assert_string_equal(f->why, "ACPI S5 (poweroff)");
}

static void test_s5_needs_slp_en(void **state)
{
	struct fixture *f = *state;

	wr(f, SLEEP_CTL, sleep_value(X86_ACPI_S5_SLP_TYP, 0));
	assert_int_equal(f->poweroffs, 0);
}

static void test_other_sleep_types_are_ignored_and_logged_once(void **state)
{
	struct fixture *f = *state;
	int pipefd[2], saved_stderr;
	char log[4096];
	ssize_t n;
	int lines = 0;

	assert_int_equal(pipe2(pipefd, O_NONBLOCK), 0);
	fflush(stderr);
	saved_stderr = dup(STDERR_FILENO);
	dup2(pipefd[1], STDERR_FILENO);
	for (int round = 0; round < 3; round++)
		for (unsigned type = 0; type < 8; type++)
			if (type != X86_ACPI_S5_SLP_TYP)
				wr(f, SLEEP_CTL, sleep_value(type, 1));
	fflush(stderr);
	dup2(saved_stderr, STDERR_FILENO);
	close(saved_stderr);
	n = read(pipefd[0], log, sizeof(log) - 1);
	close(pipefd[0]);
	close(pipefd[1]);

	assert_int_equal(f->poweroffs + f->resets, 0);
	assert_true(n > 0);
	for (ssize_t i = 0; i < n; i++)
		lines += log[i] == '\n';
	assert_int_equal(lines, 7); /* one per unsupported type, not per write */
}

static void test_reset_register(void **state)
{
	struct fixture *f = *state;

	for (unsigned v = 0; v < 256; v++)
		if (v != X86_ACPI_RESET_VALUE)
			wr(f, RESET_REG, (uint8_t)v);
	assert_int_equal(f->resets, 0);
	/* The reset value elsewhere is no reset either. */
	wr(f, SLEEP_STS, X86_ACPI_RESET_VALUE);
	wr(f, 3, X86_ACPI_RESET_VALUE);
	assert_int_equal(f->resets, 0);
	wr(f, RESET_REG, X86_ACPI_RESET_VALUE);
	assert_int_equal(f->resets, 1);
	assert_int_equal(f->poweroffs, 0);
	assert_string_equal(f->why, "ACPI reset register");
}

static void test_reads_are_zero(void **state)
{
	struct fixture *f = *state;
	uint8_t data[8];

	for (uint64_t offset = 0; offset < 8; offset++) {
		for (uint32_t len = 1; len <= 8; len *= 2) {
			memset(data, 0xee, sizeof(data));
			acpi_pm_ops.read(f->pm, offset, data, len);
			for (uint32_t i = 0; i < len; i++)
				assert_int_equal(data[i], 0);
			if (len < 8)
				assert_int_equal(data[len], 0xee);
		}
	}
}

static void test_wide_write_covers_its_bytes(void **state)
{
	struct fixture *f = *state;
	uint8_t sts_then_reset[2] = {0x80, X86_ACPI_RESET_VALUE};
	uint8_t past_the_end[8] = {0};

	acpi_pm_ops.write(f->pm, SLEEP_STS, sts_then_reset, 2);
	assert_int_equal(f->resets, 1);
	/* Bytes that would land past the range are dropped. */
	memset(past_the_end, X86_ACPI_RESET_VALUE, sizeof(past_the_end));
	acpi_pm_ops.write(f->pm, X86_ACPI_PM_LEN, past_the_end, 8);
	acpi_pm_ops.write(f->pm, ~0ULL, past_the_end, 8);
	assert_int_equal(f->resets, 1);
}

static void test_no_power_ctl(void **state)
{
	struct acpi_pm *pm = acpi_pm_create(NULL);
	uint8_t v = sleep_value(X86_ACPI_S5_SLP_TYP, 1);

	assert_non_null(pm);
	acpi_pm_ops.write(pm, SLEEP_CTL, &v, 1);
	v = X86_ACPI_RESET_VALUE;
	acpi_pm_ops.write(pm, RESET_REG, &v, 1);
	acpi_pm_destroy(pm);
}

/* Random writes against a model of the documented behaviour: every write becomes the byte
 * writes it covers inside the range. */
static void test_fuzz(void **state)
{
	struct fixture *f = *state;
	static const uint32_t lens[] = {0, 1, 2, 4, 8};
	uint8_t data[8];
	int want_poweroffs = 0, want_resets = 0;

	/* Unsupported sleep types are logged once each; get that out of the way quietly. */
	log_set_level(LOG_ERROR);
	srand(0x600);
	for (int i = 0; i < 200000; i++) {
		uint64_t offset =
		    rand() % 8 ? (uint64_t)(rand() % 6) : ~0ULL - (uint64_t)(rand() % 4);
		uint32_t len = lens[rand() % 5];

		for (size_t j = 0; j < sizeof(data); j++)
			data[j] = (uint8_t)(rand() % 4 ? rand() : (rand() % 2 ? 0x34 : 0x01));
		if (rand() % 2) {
			acpi_pm_ops.read(f->pm, offset, data, len);
			for (uint32_t j = 0; j < len; j++)
				assert_int_equal(data[j], 0);
			continue;
		}
		for (uint32_t j = 0; j < len; j++) {
			if (offset + j < offset || offset + j >= X86_ACPI_PM_LEN)
				break;
			if (offset + j == SLEEP_CTL && (data[j] & 0x20) &&
			    ((data[j] >> 2) & 7) == X86_ACPI_S5_SLP_TYP)
				want_poweroffs++;
			if (offset + j == RESET_REG && data[j] == X86_ACPI_RESET_VALUE)
				want_resets++;
		}
		acpi_pm_ops.write(f->pm, offset, data, len);
	}
	log_set_level(LOG_WARN);
	assert_true(want_poweroffs > 0 && want_resets > 0);
	assert_int_equal(f->poweroffs, want_poweroffs);
	assert_int_equal(f->resets, want_resets);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_header_agrees_with_layout),
	    cmocka_unit_test_setup_teardown(test_s5_powers_off, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_s5_needs_slp_en, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_other_sleep_types_are_ignored_and_logged_once,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reset_register, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reads_are_zero, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_wide_write_covers_its_bytes, setup, teardown),
	    cmocka_unit_test(test_no_power_ctl),
	    cmocka_unit_test_setup_teardown(test_fuzz, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
