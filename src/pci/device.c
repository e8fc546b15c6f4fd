#include "pci/device.h"

#include <stdio.h>
#include <string.h>

uint32_t pci_config_get(const struct pci_device *d, uint32_t off, uint32_t len)
{
	uint32_t v = 0;

	for (uint32_t i = 0; i < len && off + i < PCI_CONFIG_SIZE; i++)
		v |= (uint32_t)d->config[off + i] << (8 * i);
	return v;
}

void pci_config_set(struct pci_device *d, uint32_t off, uint32_t len, uint32_t value)
{
	for (uint32_t i = 0; i < len && off + i < PCI_CONFIG_SIZE; i++)
		d->config[off + i] = (uint8_t)(value >> (8 * i));
}

void pci_device_set_wmask(struct pci_device *d, uint32_t off, uint32_t len, uint32_t mask)
{
	for (uint32_t i = 0; i < len && off + i < PCI_CONFIG_SIZE; i++)
		d->wmask[off + i] = (uint8_t)(mask >> (8 * i));
}

void pci_device_init(struct pci_device *d, const char *name, uint16_t vendor, uint16_t device,
		     uint8_t revision, uint32_t class_code, uint16_t subsys_vendor,
		     uint16_t subsys_id)
{
	memset(d, 0, sizeof(*d));
	snprintf(d->name, sizeof(d->name), "%s", name);
	pci_config_set(d, PCI_VENDOR_ID, 2, vendor);
	pci_config_set(d, PCI_DEVICE_ID, 2, device);
	pci_config_set(d, PCI_REVISION_ID, 1, revision);
	pci_config_set(d, PCI_CLASS_PROG, 3, class_code);
	pci_config_set(d, PCI_SUBSYS_VENDOR, 2, subsys_vendor);
	pci_config_set(d, PCI_SUBSYS_ID, 2, subsys_id);
	/* Header type 0, single function; no interrupt pin: interrupts are MSI-X only. */
	pci_device_set_wmask(d, PCI_COMMAND, 2,
			     PCI_COMMAND_IO | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER |
				 PCI_COMMAND_SERR | PCI_COMMAND_INTX_OFF);
	pci_device_set_wmask(d, PCI_CACHE_LINE, 1, 0xff);
	pci_device_set_wmask(d, PCI_LATENCY_TIMER, 1, 0xff);
	pci_device_set_wmask(d, PCI_INTERRUPT_LINE, 1, 0xff);
	d->cap_end = PCI_CAPS_START;
}

uint8_t pci_device_add_cap(struct pci_device *d, uint8_t id, const void *body, uint8_t len)
{
	uint32_t off = d->cap_end;

	if (off + 2u + len > PCI_CONFIG_SIZE)
		return 0;
	d->config[off] = id;
	d->config[off + 1] = 0;
	memcpy(&d->config[off + 2], body, len);
	if (d->last_cap)
		d->config[d->last_cap + 1] = (uint8_t)off;
	else
		d->config[PCI_CAP_PTR] = (uint8_t)off;
	pci_config_set(d, PCI_STATUS, 2, pci_config_get(d, PCI_STATUS, 2) | PCI_STATUS_CAP_LIST);
	d->last_cap = (uint8_t)off;
	/* Capabilities start on dword boundaries. */
	d->cap_end = (uint8_t)((off + 2u + len + 3u) & ~3u);
	return (uint8_t)off;
}

void pci_device_set_bar(struct pci_device *d, int bar, uint32_t size,
			const struct bus_device_ops *ops, void *opaque)
{
	uint32_t off = PCI_BAR0 + 4u * (uint32_t)bar;

	d->bars[bar] = (struct pci_bar){.size = size, .ops = ops, .opaque = opaque};
	pci_config_set(d, off, 4, PCI_BAR_MEM_32);
	/* Only the address bits above the size stick: writing all ones reads back the size. */
	pci_device_set_wmask(d, off, 4, ~(size - 1) & PCI_BAR_ADDR_MASK);
}

uint32_t pci_device_bar_addr(const struct pci_device *d, int bar)
{
	return pci_config_get(d, PCI_BAR0 + 4u * (uint32_t)bar, 4) & PCI_BAR_ADDR_MASK;
}

uint32_t pci_device_config_read(struct pci_device *d, uint32_t off, uint32_t len)
{
	return pci_config_get(d, off, len);
}

void pci_device_config_write(struct pci_device *d, uint32_t off, uint32_t len, uint32_t value)
{
	for (uint32_t i = 0; i < len && off + i < PCI_CONFIG_SIZE; i++) {
		uint8_t m = d->wmask[off + i], b = (uint8_t)(value >> (8 * i));

		d->config[off + i] = (uint8_t)((d->config[off + i] & ~m) | (b & m));
	}
	atomic_store(&d->command, (uint16_t)pci_config_get(d, PCI_COMMAND, 2));
}
