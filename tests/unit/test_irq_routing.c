/* The VM's interrupt routing table with x86's defaults: KVM_SET_GSI_ROUTING replaces the whole
 * table, so every MSI route goes in beside the wired routes KVM started with (GSIs 0-15 to the
 * PIC and the I/O APIC, 16-23 to the I/O APIC), never instead of them; a message no local APIC
 * takes is refused and changes nothing. No VM fd: the table is kept, nothing is sent. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "arch/x86/layout.h"
#include "vmm/irq_routing.h"

#include <errno.h>
#include <stdlib.h>

static int count_gsi(const struct kvm_irq_routing_entry *e, int n, uint32_t gsi, uint32_t type)
{
	int c = 0;

	for (int i = 0; i < n; i++)
		c += e[i].gsi == gsi && e[i].type == type;
	return c;
}

static void test_msi_routes_keep_the_defaults(void **state)
{
	struct irq_routing *r = calloc(1, sizeof(*r));
	struct kvm_irq_routing_entry t[128];
	const struct msi_routes *msi;
	int n, a, b;

	assert_int_equal(irq_routing_init(r, -1), 0);
	msi = irq_routing_msi(r);
	assert_non_null(msi);
	n = irq_routing_table(r, t, 128);
	assert_int_equal(n, 16 * 2 + 8);
	for (uint32_t gsi = 0; gsi < 24; gsi++)
		assert_int_equal(count_gsi(t, n, gsi, KVM_IRQ_ROUTING_IRQCHIP), gsi < 16 ? 2 : 1);

	a = msi->ops->add(msi->ctx, 100);
	b = msi->ops->add(msi->ctx, 101);
	assert_true(a >= 0 && b >= 0 && a != b);
	/* Added but not set: not in the table yet. */
	assert_int_equal(irq_routing_table(r, t, 128), 40);
	assert_int_equal(msi->ops->set(msi->ctx, a, 0xfee00000, 0x4041, 0x08), 0);
	n = irq_routing_table(r, t, 128);
	assert_int_equal(n, 41);
	assert_int_equal(t[40].type, KVM_IRQ_ROUTING_MSI);
	assert_true(t[40].gsi >= 24);
	assert_int_equal(t[40].u.msi.address_lo, 0xfee00000);
	assert_int_equal(t[40].u.msi.address_hi, 0);
	assert_int_equal(t[40].u.msi.data, 0x4041);
	for (uint32_t gsi = 0; gsi < 24; gsi++)
		assert_int_equal(count_gsi(t, n, gsi, KVM_IRQ_ROUTING_IRQCHIP), gsi < 16 ? 2 : 1);

	/* Not a local APIC's address: refused, the route keeps its message. */
	assert_int_equal(msi->ops->set(msi->ctx, a, 0xfec00000, 1, 0x08), -EINVAL);
	assert_int_equal(msi->ops->set(msi->ctx, b, 0x1fee00000ULL, 1, 0x08), -EINVAL);
	n = irq_routing_table(r, t, 128);
	assert_int_equal(n, 41);
	assert_int_equal(t[40].u.msi.address_lo, 0xfee00000);
	assert_int_equal(msi->ops->set(msi->ctx, 12345, 0xfee00000, 1, 0), -EINVAL);

	assert_int_equal(msi->ops->set(msi->ctx, b, 0xfee01000, 0x22, 0x10), 0);
	assert_int_equal(irq_routing_table(r, t, 128), 42);
	msi->ops->remove(msi->ctx, a);
	n = irq_routing_table(r, t, 128);
	assert_int_equal(n, 41);
	assert_int_equal(t[40].u.msi.address_lo, 0xfee01000);
	irq_routing_destroy(r);
	free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_msi_routes_keep_the_defaults),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
