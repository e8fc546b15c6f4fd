/* CPUID per vCPU: APIC IDs, the logical processor count, the x2APIC topology leaves, the AMD
 * core count and the hypervisor bit, rewritten over a table shaped like KVM's supported CPUID. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "arch/x86/cpuid.h"

#include <string.h>

static void add(struct x86_cpuid *c, unsigned fn, unsigned idx, int indexed, unsigned eax,
		unsigned ebx, unsigned ecx, unsigned edx)
{
	struct kvm_cpuid_entry2 *e = &c->entries[c->header.nent++];

	memset(e, 0, sizeof(*e));
	e->function = fn;
	e->index = idx;
	e->flags = indexed ? KVM_CPUID_FLAG_SIGNIFCANT_INDEX : 0;
	e->eax = eax;
	e->ebx = ebx;
	e->ecx = ecx;
	e->edx = edx;
}

/* A host-like table: the host's own APIC ID 7 and 16 logical CPUs, which must not leak. */
static void host_table(struct x86_cpuid *c)
{
	memset(c, 0, sizeof(*c));
	add(c, 0, 0, 0, 0x1f, 0, 0, 0);
	add(c, 1, 0, 0, 0x800f12, (7u << 24) | (16u << 16) | 0x0800, 0x7ed8320b, 0x178bfbff);
	add(c, 4, 0, 1, 0x1c004121, 0, 0, 0);
	add(c, 4, 1, 1, 0x1c004122, 0, 0, 0);
	add(c, 4, 2, 1, 0, 0, 0, 0);
	add(c, 0xb, 0, 1, 1, 2, 0x100, 7);
	add(c, 0xb, 1, 1, 4, 16, 0x201, 7);
	add(c, 0xb, 2, 1, 0, 0, 2, 7);
	add(c, 0x80000001, 0, 0, 0, 0, 1u << 22, 0);
	add(c, 0x80000008, 0, 0, 0x3030, 0, 0x400f, 0);
	add(c, 0x8000001d, 0, 1, 0x121, 0, 0, 0);
	add(c, 0x8000001e, 0, 0, 7, 0x103, 0, 0);
}

static void test_topology_of_vcpu(void **state)
{
	struct x86_cpuid c;
	struct kvm_cpuid_entry2 *e;

	host_table(&c);
	x86_cpuid_fixup(&c, 3, 4);

	e = x86_cpuid_find(&c, 1, 0);
	assert_int_equal(e->ebx >> 24, 3);	    /* initial APIC ID */
	assert_int_equal((e->ebx >> 16) & 0xff, 4); /* logical processors */
	assert_int_equal(e->ebx & 0xffff, 0x0800);  /* CLFLUSH size kept */
	assert_true(e->ecx & (1u << 31));	    /* hypervisor */
	assert_true(e->edx & (1u << 28));	    /* HTT: more than one logical CPU */

	e = x86_cpuid_find(&c, 4, 0);
	assert_int_equal(e->eax >> 26, 3); /* cores per package - 1 */
	assert_int_equal((e->eax >> 14) & 0xfff, 0);
	e = x86_cpuid_find(&c, 4, 2);
	assert_int_equal(e->eax, 0); /* the null descriptor stays null */

	e = x86_cpuid_find(&c, 0xb, 0);
	assert_int_equal(e->edx, 3);
	assert_int_equal(e->ebx, 1);
	assert_int_equal((e->ecx >> 8) & 0xff, 1); /* SMT level */
	e = x86_cpuid_find(&c, 0xb, 1);
	assert_int_equal(e->eax, 2); /* 4 cores need 2 bits */
	assert_int_equal(e->ebx, 4);
	assert_int_equal((e->ecx >> 8) & 0xff, 2); /* core level */
	assert_int_equal(e->edx, 3);

	e = x86_cpuid_find(&c, 0x80000008, 0);
	assert_int_equal(e->ecx & 0xff, 3);
	assert_int_equal((e->ecx >> 12) & 0xf, 2);
	assert_false(x86_cpuid_find(&c, 0x80000001, 0)->ecx & (1u << 22)); /* no TOPOEXT */
	assert_null(x86_cpuid_find(&c, 0x8000001d, 0));
	assert_null(x86_cpuid_find(&c, 0x8000001e, 0));
}

static void test_single_vcpu(void **state)
{
	struct x86_cpuid c;
	struct kvm_cpuid_entry2 *e;

	host_table(&c);
	x86_cpuid_fixup(&c, 0, 1);
	e = x86_cpuid_find(&c, 1, 0);
	assert_int_equal(e->ebx >> 24, 0);
	assert_int_equal((e->ebx >> 16) & 0xff, 1);
	assert_false(e->edx & (1u << 28));
	assert_int_equal(x86_cpuid_find(&c, 0xb, 1)->eax, 0);
	assert_int_equal(x86_cpuid_find(&c, 4, 0)->eax >> 26, 0);
}

static void test_odd_counts(void **state)
{
	struct x86_cpuid c;

	host_table(&c);
	x86_cpuid_fixup(&c, 4, 5);
	assert_int_equal(x86_cpuid_find(&c, 0xb, 1)->eax, 3); /* 5 cores need 3 bits */
	assert_int_equal(x86_cpuid_find(&c, 0xb, 1)->ebx, 5);
	assert_int_equal(x86_cpuid_find(&c, 1, 0)->ebx >> 24, 4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_topology_of_vcpu),
		cmocka_unit_test(test_single_vcpu),
		cmocka_unit_test(test_odd_counts),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
