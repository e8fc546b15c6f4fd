/* The VM's interrupt routing table (KVM_SET_GSI_ROUTING) and the MSI routes devices add to it.
 * KVM_SET_GSI_ROUTING replaces the whole table, so this module is its one owner: every update
 * sends the arch's default routes (arch_irq_routing_defaults: the wired interrupt lines) plus
 * every MSI route that is set. Each MSI route has a GSI of its own, from the arch's first free
 * one up, and the device's eventfd is bound to it with KVM_IRQFD once the route is first set.
 *
 * Any thread (a vCPU writing an MSI-X table entry); serialized by an internal lock. Without a
 * VM fd (unit tests) the table is kept but nothing is sent to KVM. */
#ifndef SKIFF_IRQ_ROUTING_H
#define SKIFF_IRQ_ROUTING_H

#include "base/irq.h"

#include <linux/kvm.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define IRQ_ROUTING_MAX_DEFAULTS 64
#define IRQ_ROUTING_MAX_MSI	 256

struct irq_msi_route {
	bool used;
	bool set;      /* the entry is in the table */
	bool irqfd;    /* fd is bound to the GSI */
	bool detached; /* the device asked for fd unbound (msi_routes_ops.detach) */
	int fd;
	struct kvm_irq_routing_entry entry;
};

struct irq_routing {
	pthread_mutex_t lock;
	int vm_fd;
	bool ready; /* irq_routing_init succeeded */
	struct kvm_irq_routing_entry defaults[IRQ_ROUTING_MAX_DEFAULTS];
	int nr_defaults;
	uint32_t first_msi_gsi;
	struct irq_msi_route msi[IRQ_ROUTING_MAX_MSI];
	struct msi_routes iface; /* what devices are handed */
};

/* Takes the arch's default routes. Returns 0, or -errno after one logged line (-ENODEV: this
 * arch has no MSI routing yet). */
int irq_routing_init(struct irq_routing *r, int vm_fd);
/* Unbinds every irqfd; the table in KVM stays as it is (the VM is going away). */
void irq_routing_destroy(struct irq_routing *r);

/* The MSI interface for devices; NULL before irq_routing_init succeeded. */
const struct msi_routes *irq_routing_msi(struct irq_routing *r);

/* The table as the last update sent it (defaults first, then the set MSI routes, by GSI): up to
 * `max` entries into `out`; returns how many there are. For tests and debugging. */
int irq_routing_table(struct irq_routing *r, struct kvm_irq_routing_entry *out, int max);

#endif
