/* What PCI needs of the arm64 platform (--enable-pci): the host bridge's windows (layout.h; the
 * device tree describes them as a pci-host-ecam-generic node, fdt.c) and the interrupt routes.
 * A PCI device's MSI goes to the GICv3 ITS (gic.c) with its requester id as the device id, the
 * identity the device tree's msi-map promises the guest. Pure functions of the layout: no KVM. */
#include "arch/arch.h"
#include "arch/arm64/layout.h"

#include <errno.h>
#include <linux/kvm.h>
#include <string.h>

/* GITS_TRANSLATER: the ITS register a device writes its event id to, in the translation frame
 * (the second 64 KiB page). The only address an MSI to the ITS can have. */
#define GITS_TRANSLATER (ARM64_GIC_ITS_BASE + 0x10000 + 0x40)

int arch_pci_windows(const struct vm_config *cfg, struct arch_pci_windows *w)
{
	*w = (struct arch_pci_windows){
	    .ecam_base = ARM64_PCI_ECAM_BASE,
	    .ecam_size = ARM64_PCI_ECAM_SIZE,
	    .mmio_base = ARM64_PCI_MMIO_BASE,
	    .mmio_size = ARM64_PCI_MMIO_SIZE,
	    .cf8 = false,
	};
	return 0;
}

/* KVM's own default table on arm64 maps GSI n to the vGIC's SPI n (irqchip 0, pin n: KVM adds
 * the 32 private interrupts itself). Of those, only the lines driven through KVM_IRQFD need a
 * route: the virtio-mmio devices' SPIs (KVM_IRQ_LINE, which the UART and the PL061 use, does not
 * go through the table). MSI routes come after every SPI, so no GSI is both. */
int arch_irq_routing_defaults(struct kvm_irq_routing_entry *out, int max, uint32_t *first_msi_gsi)
{
	int n = 0;

	for (int i = 0;; i++) {
		uint64_t base;
		uint32_t gsi;

		if (arch_virtio_mmio_slot(i, &base, &gsi))
			break;
		if (n >= max)
			return -ENOSPC;
		out[n++] = (struct kvm_irq_routing_entry){
		    .gsi = gsi,
		    .type = KVM_IRQ_ROUTING_IRQCHIP,
		    .u.irqchip = {.irqchip = 0, .pin = gsi},
		};
	}
	*first_msi_gsi = ARM64_GIC_NR_IRQS - 32;
	return n;
}

int arch_msi_route(struct kvm_irq_routing_entry *e, uint64_t addr, uint32_t data,
		   uint32_t requester_id)
{
	uint32_t gsi = e->gsi;

	if (addr != GITS_TRANSLATER || requester_id > 0xffff)
		return -EINVAL;
	memset(e, 0, sizeof(*e));
	e->gsi = gsi;
	e->type = KVM_IRQ_ROUTING_MSI;
	e->flags = KVM_MSI_VALID_DEVID;
	e->u.msi.address_lo = (uint32_t)addr;
	e->u.msi.address_hi = (uint32_t)(addr >> 32);
	e->u.msi.data = data;
	e->u.msi.devid = requester_id;
	return 0;
}
