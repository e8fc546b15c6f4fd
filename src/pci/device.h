/* A PCI function's type-0 configuration space, as the guest reads and writes it: the header,
 * a capability list, up to six 32-bit memory BARs (sized the usual way: writing all ones reads
 * back the size mask) and their decoding on the MMIO bus, which follows COMMAND's memory-space
 * bit and the BAR addresses the guest writes (the host bridge maps and unmaps them).
 *
 * Every register has a mask of the bits the guest may change; the rest keep what the device
 * set. A device type fills the header, capabilities and BARs before adding the function to
 * the host (pci/host.h), and may watch writes through its ops. Config accesses run on vCPU
 * threads with the host's config lock held; `command` is also readable without it. */
#ifndef SKIFF_PCI_DEVICE_H
#define SKIFF_PCI_DEVICE_H

#include "bus/bus.h"
#include "pci/regs.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct pci_device;
struct pci_host;

struct pci_device_ops {
	/* BAR `bar` is decoded at `addr` from now on (mapped), or no more (!mapped). */
	void (*bar_mapped)(struct pci_device *d, int bar, bool mapped, uint64_t addr);
	/* After a write to [off, off + len) was applied (any register, COMMAND included). */
	void (*config_written)(struct pci_device *d, uint32_t off, uint32_t len);
	/* Before a read of [off, off + len): the device may refresh those bytes first. */
	void (*config_read)(struct pci_device *d, uint32_t off, uint32_t len);
};

struct pci_bar {
	uint32_t size; /* a power of 2 >= 4 KiB; 0: no BAR */
	const struct bus_device_ops *ops;
	void *opaque;
	bool mapped;
	uint64_t mapped_at;
};

struct pci_device {
	char name[48];
	uint8_t devfn; /* set by the host */
	uint8_t config[PCI_CONFIG_SIZE];
	uint8_t wmask[PCI_CONFIG_SIZE]; /* bits the guest may write */
	struct pci_bar bars[PCI_NR_BARS];
	uint8_t last_cap;	  /* offset of the last capability, 0: none yet */
	uint8_t cap_end;	  /* where the next one goes */
	_Atomic uint16_t command; /* COMMAND as last written */
	struct pci_host *host;
	const struct pci_device_ops *ops;
	void *priv;
};

/* A header with these identities, no BARs and no capabilities yet. */
void pci_device_init(struct pci_device *d, const char *name, uint16_t vendor, uint16_t device,
		     uint8_t revision, uint32_t class_code, uint16_t subsys_vendor,
		     uint16_t subsys_id);

/* Appends a capability: `body` is what follows its id and next pointer (len bytes). Returns its
 * offset in config space, or 0 when it does not fit. Its bytes are read-only until the device
 * marks some writable (pci_device_set_wmask). */
uint8_t pci_device_add_cap(struct pci_device *d, uint8_t id, const void *body, uint8_t len);
void pci_device_set_wmask(struct pci_device *d, uint32_t off, uint32_t len, uint32_t mask);

/* A 32-bit non-prefetchable memory BAR of `size` bytes (a power of 2, >= 4096), served by
 * `ops` (offsets from the BAR's start) while the guest has it decoded. */
void pci_device_set_bar(struct pci_device *d, int bar, uint32_t size,
			const struct bus_device_ops *ops, void *opaque);
uint32_t pci_device_bar_addr(const struct pci_device *d, int bar);

/* Aligned accesses within the 256 bytes (the host checks): len 1, 2 or 4. */
uint32_t pci_device_config_read(struct pci_device *d, uint32_t off, uint32_t len);
void pci_device_config_write(struct pci_device *d, uint32_t off, uint32_t len, uint32_t value);

/* Little-endian helpers for the device's own config bytes. */
uint32_t pci_config_get(const struct pci_device *d, uint32_t off, uint32_t len);
void pci_config_set(struct pci_device *d, uint32_t off, uint32_t len, uint32_t value);

static inline bool pci_device_bus_master(struct pci_device *d)
{
	return atomic_load(&d->command) & PCI_COMMAND_MASTER;
}

#endif
