/* The virtio-pci transport, modern interface only (virtio 1.x 4.1; no legacy I/O BAR): one PCI
 * function per device, vendor 0x1af4, device 0x1040 + the virtio device id, revision 1. This
 * file decodes its registers; what they mean is the virtio core's (virtio/core.h).
 *
 * BAR 0 (32 KiB, 32-bit memory) holds every structure the capabilities point at:
 *   0x0000 common configuration   0x1000 ISR status (read to clear)
 *   0x2000 device configuration   0x3000 notifications: queue q at 0x3000 + 4 q
 *   0x4000 MSI-X table            0x6000 MSI-X pending bits
 *
 *   - Notifications: a KVM ioeventfd per queue on its notify address (2-byte writes of the queue
 *     index), bound while BAR 0 is decoded and rebound when the guest moves it; other writes
 *     there exit and kick the queue of that address.
 *   - Interrupts are MSI-X only (no INTx pin): one vector per queue plus one for config changes
 *     as the driver assigns them; each vector is an eventfd bound to an MSI route
 *     (base/irq.h's msi_routes: KVM_SET_GSI_ROUTING + KVM_IRQFD) programmed from the table
 *     entry when the vector is unmasked. Masked vectors (entry or function mask), a disabled
 *     MSI-X or bus mastering off leave the vector pending (PBA) until it can be delivered; an
 *     entry whose address no interrupt controller takes is refused with a log line.
 *   - A vhost-user backend may signal a queue's vector eventfd itself (direct_irq_fd, while
 *     MSI-X is on): the eventfd is attached to its irqfd only while the vector is live and
 *     detached the moment it is not, so what the backend signals then stays in the eventfd,
 *     reads as the PBA bit and is delivered when the vector is live again.
 *   - Bus mastering off: no interrupts, kicks are dropped, and a running device is failed
 *     (DEVICE_NEEDS_RESET). */
#ifndef SKIFF_VIRTIO_PCI_H
#define SKIFF_VIRTIO_PCI_H

#include "base/irq.h"
#include "base/state.h"
#include "bus/bus.h"
#include "pci/host.h"
#include "virtio/device.h"

#include <stdint.h>

struct virtio_pci;

struct virtio_pci_params {
	struct pci_host *host;
	int vm_fd; /* for KVM_IOEVENTFD; -1 in unit tests */
	const struct guest_mem *mem;
	const struct msi_routes *msi; /* NULL: vectors only signal their eventfds (tests) */
};

#define VIRTIO_PCI_VENDOR      0x1af4
#define VIRTIO_PCI_DEVICE_BASE 0x1040
#define VIRTIO_PCI_BAR_SIZE    0x8000
#define VIRTIO_PCI_COMMON      0x0000
#define VIRTIO_PCI_ISR	       0x1000
#define VIRTIO_PCI_DEVICE_CFG  0x2000
#define VIRTIO_PCI_NOTIFY      0x3000
#define VIRTIO_PCI_NOTIFY_MULT 4
#define VIRTIO_PCI_MSIX_TABLE  0x4000
#define VIRTIO_PCI_MSIX_PBA    0x6000
#define VIRTIO_PCI_NO_VECTOR   0xffff

/* Attaches `dev` as a function on the host's bus 0: starts its worker thread, places its BAR.
 * Returns NULL after a logged line on failure (`dev` is not destroyed). */
struct virtio_pci *virtio_pci_create(const struct virtio_pci_params *p, struct virtio_device *dev);
/* Takes the function off the bus, resets the device on its worker thread, stops the thread and
 * destroys the device. */
void virtio_pci_destroy(struct virtio_pci *t);

/* The transport's state beyond the core's (virtio/core_state.h): the function's config space,
 * the vectors the driver assigned, the MSI-X table and its pending bits. One section tagged
 * `tag` (VM_DEVICE_VIRTIO_PCI), version 1:
 *
 *   u16 nr_queues, nr_vectors; 256 bytes of config space; u16 config vector;
 *   per queue: u16 vector; per vector: u32 address low, high, data, control; bool pending.
 *
 * Restore puts BAR 0 where the saved config space decodes it, and MSI routes as the table
 * says; it refuses (-EBADMSG, reason in the reader) another function's config space, another
 * queue or vector count, vectors beyond the table and reserved control bits, changing nothing.
 * Restore it before the core's state, so that interrupts the core raises again find their
 * vectors. While no vCPU runs. */
int virtio_pci_save(struct virtio_pci *t, uint16_t tag, struct state_writer *w);
int virtio_pci_restore(struct virtio_pci *t, uint16_t tag, struct state_reader *r);

/* For tests and log lines. */
struct pci_device *virtio_pci_function(struct virtio_pci *t);
int virtio_pci_vector_eventfd(const struct virtio_pci *t, uint16_t vector);
extern const struct bus_device_ops virtio_pci_bar_ops;

#endif
