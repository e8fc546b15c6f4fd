/* The PCI host bridge: bus 0 with the host bridge itself at 00:00.0 and up to 31 functions
 * (one per slot, function 0), and the two ways a guest reaches their config space: the ECAM
 * window on the MMIO bus (bus << 20 | device << 15 | function << 12 | register) and, on x86,
 * configuration mechanism #1 (address register at port 0xcf8, data at 0xcfc..0xcff).
 *
 * The guest is not trusted: an access that is unaligned, of a width config space does not have
 * or beyond a function's 256 bytes gets a safe answer (reads all ones, or 0 past 256 in ECAM;
 * writes ignored) and one log line per kind; absent functions and other buses read all ones,
 * as on real hardware. BARs are placed in the memory window when a function is added (as
 * firmware would) and decoded only while COMMAND's memory-space bit is set and the BAR lies in
 * the window and clashes with nothing else on the bus; the guest may move them.
 *
 * Config accesses from all vCPUs are serialized by the host's lock. */
#ifndef SKIFF_PCI_HOST_H
#define SKIFF_PCI_HOST_H

#include "base/device.h"
#include "bus/bus.h"
#include "pci/device.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define PCI_MAX_SLOTS 32

struct pci_host_params {
	struct bus *mmio;
	struct bus *pio;	       /* for CF8/CFC; NULL without */
	uint64_t ecam_base, ecam_size; /* at least 1 MiB: bus 0 */
	uint64_t mmio_base, mmio_size; /* the BAR window */
};

struct pci_host {
	struct vm_device entry; /* on the VM's device list (pci_host_create) */
	struct bus *mmio, *pio;
	uint64_t ecam_base, ecam_size;
	uint64_t mmio_base, mmio_size;
	uint64_t next_bar; /* where pci_host_add places the next BAR */
	pthread_mutex_t lock;
	uint32_t cf8; /* the mechanism #1 address register */
	bool ecam_on_bus, cf8_on_bus;
	struct pci_device bridge;
	struct pci_device *slots[PCI_MAX_SLOTS];
	atomic_uint logged;
};

/* Puts the host bridge at 00:00.0 and registers the ECAM window (and CF8/CFC with a pio bus).
 * Returns 0 or -errno after one logged line (nothing stays registered). */
int pci_host_init(struct pci_host *h, const struct pci_host_params *p);
/* Unregisters the config windows; every function must have been removed. */
void pci_host_destroy(struct pci_host *h);

/* pci_host_init on a new host whose `entry` is ready for the VM's device list, whose destroy
 * op undoes both (the list destroys it after the functions, which come later). NULL after one
 * logged line. */
struct pci_host *pci_host_create(const struct pci_host_params *p);

/* Gives `d` the next free slot, places its BARs in the window (not decoded until the guest
 * sets COMMAND's memory bit). Returns 0, or -ENOSPC (bus or window full) after a log line. */
int pci_host_add(struct pci_host *h, struct pci_device *d);
/* Takes `d` off the bus (its BARs too); returns once no vCPU is inside them. */
void pci_host_remove(struct pci_host *h, struct pci_device *d);

/* Config space access to bus 0's device `devfn`, as both windows do it (for tests too): `off`
 * below 4096, any len and alignment (checked here). */
void pci_host_config_read(struct pci_host *h, uint8_t bus, uint8_t devfn, uint32_t off, void *data,
			  uint32_t len);
void pci_host_config_write(struct pci_host *h, uint8_t bus, uint8_t devfn, uint32_t off,
			   const void *data, uint32_t len);

/* The windows' bus ops (opaque: the host), for tests that drive them directly. */
extern const struct bus_device_ops pci_host_ecam_ops;
extern const struct bus_device_ops pci_host_cf8_ops;

#endif
