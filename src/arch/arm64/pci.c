/* What PCI needs of the arm64 platform. Not there yet: the ECAM host bridge in the device tree
 * and MSIs through a GICv3 ITS; until then --enable-pci is refused on arm64. */
#include "arch/arch.h"

#include <errno.h>
#include <linux/kvm.h>

int arch_pci_windows(struct arch_pci_windows *w)
{
	return -ENODEV;
}

int arch_irq_routing_defaults(struct kvm_irq_routing_entry *out, int max, uint32_t *first_msi_gsi)
{
	return -ENODEV;
}

int arch_msi_route(struct kvm_irq_routing_entry *e, uint64_t addr, uint32_t data,
		   uint32_t requester_id)
{
	return -ENODEV;
}
