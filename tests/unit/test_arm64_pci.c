/* arm64's PCI hooks (arch/arm64/pci.c), without KVM: the windows the generic PCI code and the
 * device tree use, the wired routes that stand in for KVM's default table once
 * KVM_SET_GSI_ROUTING replaces it (every virtio-mmio SPI, as KVM numbers it), and the MSI routes
 * to the ITS (device id = requester id; anything but the ITS doorbell refused). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <linux/kvm.h>
#include <string.h>

#include "arch/arch.h"
#include "arch/arm64/layout.h"

#define ITS_DOORBELL (ARM64_GIC_ITS_BASE + 0x10040)

static void test_windows(void **state)
{
	struct arch_pci_windows w;

	memset(&w, 0xa5, sizeof(w));
	assert_int_equal(arch_pci_windows(NULL, &w), 0);
	assert_int_equal(w.ecam_base, ARM64_PCI_ECAM_BASE);
	assert_int_equal(w.ecam_size, 0x100000); /* bus 0 */
	assert_int_equal(w.mmio_base, ARM64_PCI_MMIO_BASE);
	assert_int_equal(w.mmio_size, ARM64_PCI_MMIO_SIZE);
	assert_true(w.mmio_base + w.mmio_size <= 0x100000000ULL);
	assert_false(w.cf8);
}

/* Each virtio-mmio slot's GSI has the route KVM's own default gives it: irqchip 0, pin = the
 * SPI number (KVM adds the 32 private interrupts), and the first MSI GSI is past every SPI. */
static void test_default_routes(void **state)
{
	struct kvm_irq_routing_entry e[128];
	uint32_t first = 0;
	int n = arch_irq_routing_defaults(e, 128, &first), slots = 0;
	uint64_t base;
	uint32_t gsi;

	while (arch_virtio_mmio_slot(slots, &base, &gsi) == 0) {
		bool found = false;

		for (int i = 0; i < n; i++) {
			if (e[i].gsi != gsi)
				continue;
			assert_false(found);
			found = true;
			assert_int_equal(e[i].type, KVM_IRQ_ROUTING_IRQCHIP);
			assert_int_equal(e[i].flags, 0);
			assert_int_equal(e[i].u.irqchip.irqchip, 0);
			assert_int_equal(e[i].u.irqchip.pin, gsi);
			assert_true(e[i].u.irqchip.pin < ARM64_GIC_NR_IRQS - 32);
		}
		if (!found)
			fail_msg("no route for virtio-mmio slot %d (GSI %u)", slots, gsi);
		slots++;
	}
	assert_int_equal(n, slots);
	assert_int_equal(n, ARM64_VIRTIO_MMIO_MAX);
	assert_true(first >= ARM64_GIC_NR_IRQS - 32);
	for (int i = 0; i < n; i++)
		assert_true(e[i].gsi < first);
	/* irq_routing.h keeps at most IRQ_ROUTING_MAX_DEFAULTS (64) of them. */
	assert_true(n <= 64);
	assert_int_equal(arch_irq_routing_defaults(e, n - 1, &first), -ENOSPC);
}

static void test_msi_route(void **state)
{
	struct kvm_irq_routing_entry e;

	memset(&e, 0xff, sizeof(e));
	e.gsi = 100;
	assert_int_equal(arch_msi_route(&e, ITS_DOORBELL, 0x21, 0x0008), 0);
	assert_int_equal(e.gsi, 100);
	assert_int_equal(e.type, KVM_IRQ_ROUTING_MSI);
	assert_int_equal(e.flags, KVM_MSI_VALID_DEVID);
	assert_int_equal(e.u.msi.address_lo, (uint32_t)ITS_DOORBELL);
	assert_int_equal(e.u.msi.address_hi, 0);
	assert_int_equal(e.u.msi.data, 0x21);
	assert_int_equal(e.u.msi.devid, 0x0008); /* 00:01.0 */
	for (int i = 4; i < 8; i++)
		assert_int_equal(e.u.pad[i], 0); /* the rest of the union cleared */

	/* The largest requester id, bus 255 function 7 of device 31. */
	assert_int_equal(arch_msi_route(&e, ITS_DOORBELL, 0, 0xffff), 0);
	assert_int_equal(e.u.msi.devid, 0xffff);
}

/* A guest that programs an MSI-X entry with anything but the ITS doorbell gets no route: the
 * entry is left as it was, for the caller to log and refuse. */
static void test_msi_route_refused(void **state)
{
	static const uint64_t bad[] = {
	    0,
	    ARM64_GIC_ITS_BASE,
	    ITS_DOORBELL + 4,
	    ITS_DOORBELL - 0x10000,
	    0xfee00000 /* an x86 LAPIC address */,
	    ITS_DOORBELL | (1ULL << 32),
	    ARM64_RAM_BASE,
	};
	struct kvm_irq_routing_entry e = {.gsi = 100}, before;

	before = e;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(arch_msi_route(&e, bad[i], 1, 8), -EINVAL);
		assert_memory_equal(&e, &before, sizeof(e));
	}
	assert_int_equal(arch_msi_route(&e, ITS_DOORBELL, 1, 0x10000), -EINVAL);
	assert_memory_equal(&e, &before, sizeof(e));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_windows),
	    cmocka_unit_test(test_default_routes),
	    cmocka_unit_test(test_msi_route),
	    cmocka_unit_test(test_msi_route_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
