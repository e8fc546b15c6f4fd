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

#endif
