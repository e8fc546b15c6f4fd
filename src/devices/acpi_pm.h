/* skiff's ACPI hardware-reduced power device: the sleep control, sleep status and reset
 * registers that the FADT points the guest at, one byte each in a small port range. Writing
 * SLP_EN with the \_S5 sleep type powers the VM off; writing the FADT's reset value to the reset
 * register resets it. Other sleep states are not supported: such writes are logged once and
 * ignored, and the guest goes on running. Every register reads 0.
 *
 * arch/x86/layout.h is the one source of the ports and values that the ACPI tables also use;
 * the offsets below are derived from it. */
#ifndef SKIFF_DEVICES_ACPI_PM_H
#define SKIFF_DEVICES_ACPI_PM_H

#include "arch/x86/layout.h"
#include "bus/bus.h"
#include "base/power.h"

/* Offsets into the device's range, which starts at X86_ACPI_PM_PORT. */
#define ACPI_PM_LEN		 X86_ACPI_PM_LEN
#define ACPI_PM_SLEEP_CTL_OFFSET (X86_ACPI_SLEEP_CTL - X86_ACPI_PM_PORT)
#define ACPI_PM_SLEEP_STS_OFFSET (X86_ACPI_SLEEP_STS - X86_ACPI_PM_PORT)
#define ACPI_PM_RESET_OFFSET	 (X86_ACPI_RESET_PORT - X86_ACPI_PM_PORT)

/* Sleep control register fields (ACPI spec, "Sleep Control and Status Registers"). */
#define ACPI_SLEEP_CTL_SLP_EN	     0x20
#define ACPI_SLEEP_CTL_SLP_TYP_SHIFT 2
#define ACPI_SLEEP_CTL_SLP_TYP_MASK  0x7

struct acpi_pm;

/* `power` is copied (NULL: requests go nowhere). NULL when out of memory. */
struct acpi_pm *acpi_pm_create(const struct power_ctl *power);
void acpi_pm_destroy(struct acpi_pm *pm);
/* Its entry for the VM's device list (base/device.h), whose destroy op frees it; NULL for
 * NULL. */
struct vm_device *acpi_pm_device(struct acpi_pm *pm);

/* opaque is the device; the range is ACPI_PM_LEN bytes. */
extern const struct bus_device_ops acpi_pm_ops;

#endif
