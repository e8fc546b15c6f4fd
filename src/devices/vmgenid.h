/* The Virtual Machine Generation ID (Microsoft's "Virtual Machine Generation ID" specification,
 * as Linux's drivers/virt/vmgenid.c reads it): 16 random bytes in guest memory that change
 * whenever the VM may have been duplicated, and an interrupt that tells the guest so. A guest
 * kernel mixes the new ID into its RNG and reseeds it at once ("crng reseeded due to virtual
 * machine fork"), so two clones restored from one snapshot do not produce the same random
 * numbers.
 *
 * The device writes a fresh ID when the VM is built to boot and again on every restore of its
 * state (a snapshot load), then pulses its interrupt line. Its registers are none: the guest
 * finds the ID's address in the firmware description the arch writes (x86: the DSDT's VGEN
 * device and a Generic Event Device on the line, arch/x86/acpi.h; arm64: a
 * "microsoft,vmgenid" device-tree node, arch/arm64/fdt.h). Where the 16 bytes go is the arch's
 * choice, in RAM the guest is told not to use.
 *
 * Saved state: the ID's guest address and the line's GSI. A restore puts the new ID at the
 * saved address, because that is the one the restored guest's tables name; a GSI other than
 * this build's is refused.
 *
 * Threads: created, restored and destroyed while no vCPU runs; nothing runs concurrently. */
#ifndef SKIFF_DEVICES_VMGENID_H
#define SKIFF_DEVICES_VMGENID_H

#include "base/guest_mem.h"
#include "base/irq.h"

#include <stdbool.h>
#include <stdint.h>

#define VMGENID_SIZE 16

struct vmgenid;

/* The ID at guest address `gpa` of `mem` (borrowed, must outlive the device), announced on
 * `irq` (copied). With `fresh` a new ID is written now (a VM about to boot); without it (a VM
 * about to be restored) nothing is written until the restore. NULL with the reason logged
 * when out of memory, when [gpa, gpa + 16) is not guest RAM, or when no random bytes can be
 * had. */
struct vmgenid *vmgenid_create(const struct guest_mem *mem, uint64_t gpa,
			       const struct irq_line *irq, bool fresh);
void vmgenid_destroy(struct vmgenid *g);
/* Its entry for the VM's device list (base/device.h), whose destroy op frees it; NULL for
 * NULL. */
struct vm_device *vmgenid_device(struct vmgenid *g);

/* Where the ID is now (the restored address after a restore). */
uint64_t vmgenid_addr(const struct vmgenid *g);

/* Writes a new random ID and pulses the line. 0, or -errno (getrandom's failure, or the
 * address no longer in guest RAM) with nothing written and the reason logged. */
int vmgenid_regenerate(struct vmgenid *g);

#endif
