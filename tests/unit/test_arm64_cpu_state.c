/* The arm64 machine state's pure part: how a vCPU's MPIDR_EL1 becomes the affinity that KVM's
 * vGIC attributes carry in their top 32 bits (arm-vgic-v3.rst: Aff3.Aff2.Aff1.Aff0, a byte
 * each), which names the redistributor, CPU interface and line levels a snapshot saves. The
 * rest of arch/arm64/cpu_state.c talks to KVM and is tested by the nested snapshot-restore
 * scenarios. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "arch/arm64/cpu_state.h"

static void test_affinity(void **state)
{
	(void)state;
	/* KVM's MPIDRs: bit 31 (RES1) and the U bit are not affinity. */
	assert_int_equal(arm64_gic_attr_affinity(0x80000000ULL), 0);
	assert_int_equal(arm64_gic_attr_affinity(0x80000001ULL), 1);
	assert_int_equal(arm64_gic_attr_affinity(0xc0000f02ULL), 0x0f02);
	/* Aff3 lives at bits 39:32 of MPIDR_EL1 and at bits 31:24 of the attribute's half. */
	assert_int_equal(arm64_gic_attr_affinity(0xab80010203ULL), 0xab010203);
	assert_int_equal(arm64_gic_attr_affinity(0xffffff0000000000ULL), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_affinity),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
