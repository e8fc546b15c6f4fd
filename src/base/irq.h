/* An interrupt line as a device sees it: the device sets the line's level and the VM decides how
 * that reaches the guest (KVM_IRQ_LINE into the in-kernel PIC/IOAPIC today, irqfd later). A line
 * with no set_level (a VM without an interrupt controller, or a unit test) is a no-op. */
#ifndef SKIFF_IRQ_H
#define SKIFF_IRQ_H

#include <stdbool.h>
#include <stdint.h>

struct irq_line {
	void (*set_level)(void *ctx, uint32_t gsi, bool level);
	void *ctx;
	uint32_t gsi;
};

static inline void irq_line_set(const struct irq_line *line, bool level)
{
	if (line && line->set_level)
		line->set_level(line->ctx, line->gsi, level);
}

/* Message-signalled interrupts as a device sees them: one route per vector, from an eventfd the
 * device signals to the message (address, data) the guest programmed. The VM implements it
 * (vmm/irq_routing.h: KVM_SET_GSI_ROUTING and KVM_IRQFD). */
struct msi_routes_ops {
	/* A route for eventfd `fd`, delivering nothing until set. Returns its id (>= 0) or
	 * -errno. */
	int (*add)(void *ctx, int fd);
	/* Points route `id` at message (addr, data) sent by PCI requester `requester_id`
	 * (bus << 8 | devfn). Returns 0, -EINVAL when the interrupt controller takes no message at
	 * `addr` (nothing logged: the caller says which device and vector), or -errno. */
	int (*set)(void *ctx, int id, uint64_t addr, uint32_t data, uint32_t requester_id);
	/* Disconnects the eventfd and forgets the route. */
	void (*remove)(void *ctx, int id);
	/* Detaches the eventfd from route `id` (detach true) or attaches it again, keeping the
	 * route. While detached, signals of the eventfd stay in its counter, nobody reading them:
	 * the vector's pending bit, for a signaller outside skiff (a vhost-user backend) that
	 * cannot be told to stop at once. Attaching delivers a counter left there. A route starts
	 * attached (from its first set). Returns 0 or -errno (logged). */
	int (*detach)(void *ctx, int id, bool detach);
};

struct msi_routes {
	const struct msi_routes_ops *ops;
	void *ctx;
};

#endif
