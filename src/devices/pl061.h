/* An ARM PrimeCell PL061 GPIO controller (8 lines, MMIO, 4 KiB): data register with address-bit
 * masking, direction, interrupt sense/both-edges/event/mask, raw and masked status, edge clear,
 * and the PrimeCell identification registers Linux's AMBA bus probes (PL061 peripheral ID
 * 0x00041061). The host drives the input lines (pl061_set_input), as buttons wired to them
 * would; the controller's combined interrupt (GPIOINTR) is one level-triggered line, high while
 * any masked interrupt status bit is set. skiff's arm64 platform wires gpio-keys buttons to it. */
#ifndef SKIFF_DEVICES_PL061_H
#define SKIFF_DEVICES_PL061_H

#include "bus/bus.h"
#include "base/irq.h"

#include <stdbool.h>

#define PL061_SIZE	0x1000
#define PL061_NR_LINES	8

struct pl061;

/* `irq` is copied (NULL: not connected). NULL when out of memory. */
struct pl061 *pl061_create(const struct irq_line *irq);
void pl061_destroy(struct pl061 *gpio);
/* Its entry for the VM's device list (base/device.h), whose destroy op frees it; NULL for
 * NULL. */
struct vm_device *pl061_device(struct pl061 *g);

/* Sets the level the outside world drives on input line `line` (0..7): what reads of an input
 * line return, and what edge or level interrupts see. -EINVAL for a line out of range. Safe
 * from any thread. */
int pl061_set_input(struct pl061 *gpio, unsigned line, bool level);

extern const struct bus_device_ops pl061_ops; /* opaque is the device */

#endif
