/* What PCI needs of the x86_64 platform: where its windows are (layout.h), the interrupt routes
 * KVM starts with, and which MSI messages the local APICs take. */
#include "arch/arch.h"
#include "arch/x86/layout.h"
#include "config/vm_config.h"

#include <errno.h>
#include <linux/kvm.h>
#include <string.h>

/* KVM's in-kernel I/O APIC has 24 pins; the 8259 pair has 16 lines. */
#define IOAPIC_PINS 24
#define PIC_LINES   16

/* MSI messages go to the local APICs' address range (Intel SDM 11.11.1): 0xfee0_0000 plus the
 * destination, with the upper half zero. */
#define MSI_ADDR_BASE 0xfee00000ULL
#define MSI_ADDR_MASK 0xfffffffffff00000ULL

/* SeaBIOS ignores where skiff placed the BARs and allocates them itself, from the top of its
 * 32-bit window (up to the I/O APIC) down: with firmware the window is there. */
int arch_pci_windows(const struct vm_config *cfg, struct arch_pci_windows *w)
{
	bool firmware = cfg && cfg->firmware_path;

	*w = (struct arch_pci_windows){
	    .ecam_base = X86_PCI_ECAM_ADDR,
	    .ecam_size = X86_PCI_ECAM_SIZE,
	    .mmio_base = firmware ? X86_PCI_FW_MMIO_START : X86_PCI_MMIO_START,
	    .mmio_size = firmware ? X86_PCI_FW_MMIO_SIZE : X86_PCI_MMIO_SIZE,
	    .cf8 = true,
	};
	return 0;
}

/* What KVM_CREATE_IRQCHIP installs: every GSI below 16 to its PIC line and its I/O APIC pin,
 * 16-23 to their I/O APIC pins. */
int arch_irq_routing_defaults(struct kvm_irq_routing_entry *out, int max, uint32_t *first_msi_gsi)
{
	int n = 0;

	for (uint32_t gsi = 0; gsi < IOAPIC_PINS; gsi++) {
		if (gsi < PIC_LINES) {
			if (n == max)
				return -ENOSPC;
			out[n++] = (struct kvm_irq_routing_entry){
			    .gsi = gsi,
			    .type = KVM_IRQ_ROUTING_IRQCHIP,
			    .u.irqchip = {.irqchip = gsi < 8 ? KVM_IRQCHIP_PIC_MASTER
							     : KVM_IRQCHIP_PIC_SLAVE,
					  .pin = gsi % 8},
			};
		}
		if (n == max)
			return -ENOSPC;
		out[n++] = (struct kvm_irq_routing_entry){
		    .gsi = gsi,
		    .type = KVM_IRQ_ROUTING_IRQCHIP,
		    .u.irqchip = {.irqchip = KVM_IRQCHIP_IOAPIC, .pin = gsi},
		};
	}
	*first_msi_gsi = IOAPIC_PINS;
	return n;
}

int arch_msi_route(struct kvm_irq_routing_entry *e, uint64_t addr, uint32_t data,
		   uint32_t requester_id)
{
	if ((addr & MSI_ADDR_MASK) != MSI_ADDR_BASE)
		return -EINVAL;
	e->type = KVM_IRQ_ROUTING_MSI;
	e->flags = 0;
	memset(&e->u, 0, sizeof(e->u));
	e->u.msi.address_lo = (uint32_t)addr;
	e->u.msi.address_hi = 0;
	e->u.msi.data = data;
	return 0;
}
