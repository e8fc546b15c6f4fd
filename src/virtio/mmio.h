/* The virtio-mmio transport, modern interface (version 2, virtio 1.x 4.2.2): one device's
 * registers at [base, base + VIRTIO_MMIO_SIZE) on the MMIO bus. This file decodes the registers;
 * what they mean (status, features, queues, the worker thread) is the virtio core's
 * (virtio/core.h).
 *
 *   - Register accesses run on the vCPU thread and only touch transport and core state; device
 *     work never runs there.
 *   - QueueNotify is a KVM ioeventfd per queue (datamatch on the queue index), watched by the
 *     device's worker thread. Without a VM fd (unit tests), a QueueNotify write signals the same
 *     eventfd from the vCPU path instead.
 *   - Interrupts go out through an irqfd on the device's GSI: edge-style, as the ACPI and device
 *     tree descriptions say. InterruptStatus/InterruptACK follow the specification; once the
 *     driver is up KVM batches InterruptACK writes (virtio_mmio_batch_ack), so an interrupt
 *     costs the guest one exit to skiff (the status read) instead of two. A vhost-user
 *     backend signals that irqfd itself (direct_irq_fd), and its device's InterruptStatus then
 *     always has the used-buffer bit.
 *   - A driver that breaks the rules gets DEVICE_NEEDS_RESET plus a configuration-change
 *     interrupt; writing 0 to Status resets the device (on its worker thread) and clears it. */
#ifndef SKIFF_VIRTIO_MMIO_H
#define SKIFF_VIRTIO_MMIO_H

#include "bus/bus.h"
#include "virtio/device.h"

#include <stdbool.h>
#include <stdint.h>

struct virtio_mmio;

struct virtio_mmio_params {
	struct bus *bus;	     /* the VM's MMIO bus */
	int vm_fd;		     /* for KVM_IOEVENTFD and KVM_IRQFD; -1 in unit tests */
	const struct guest_mem *mem;
	uint64_t base;		     /* VIRTIO_MMIO_SIZE bytes, page-aligned */
	uint32_t gsi;		     /* the device's own interrupt line */
};

/* Attaches `dev`: starts its worker thread, registers the registers on the bus and the
 * ioeventfds. Returns NULL after a logged line on failure (nothing stays registered; `dev` is not
 * destroyed). The interrupt line is connected later, by virtio_mmio_connect_irq(). */
struct virtio_mmio *virtio_mmio_create(const struct virtio_mmio_params *p, struct virtio_device *dev);

/* Assigns the irqfd that drives the device's GSI. Separate from creation because KVM takes an
 * irqfd only once the VM's interrupt controller is complete (arm64: KVM_IRQFD fails with EAGAIN
 * until the vGIC is initialized, which needs every vCPU to exist); call it after the platform is
 * finalized and before any vCPU runs. Interrupts raised before then wait in the eventfd and are
 * delivered when it is assigned. Returns 0 (also without a VM fd, and when already connected)
 * or -errno after a logged line. */
int virtio_mmio_connect_irq(struct virtio_mmio *t);

/* Lets KVM batch InterruptACK writes (coalesced MMIO), so that acknowledging an interrupt costs
 * the guest no exit to skiff: set(ctx, true) registers the register's 4 bytes
 * (vmm/coalesced.h's coalesced_zone_set). The transport calls it once, on the vCPU thread that
 * sets DRIVER_OK first: a guest that never drives the device never pays for the zone (whose
 * registration makes the VM's teardown wait for a grace period when it comes within about
 * 20 ms). The zone stays for the transport's life. A batched acknowledgement reaches the
 * device at the guest's next exit, which is before its next InterruptStatus read at the latest;
 * the core then clears only the causes not raised again since that read (virtio/core.h,
 * virtio_core_ack_isr). Call before any vCPU runs. */
void virtio_mmio_batch_ack(struct virtio_mmio *t, int (*set)(void *ctx, bool on), void *ctx);

/* Unregisters, resets the device on its worker thread, stops the thread, and destroys the
 * device (ops->destroy). */
void virtio_mmio_destroy(struct virtio_mmio *t);

/* For tests: the eventfd the transport signals to interrupt the guest (the irqfd). */
int virtio_mmio_irq_eventfd(const struct virtio_mmio *t);
/* The MMIO bus ops, for tests that drive the registers directly. */
extern const struct bus_device_ops virtio_mmio_ops;

#endif
