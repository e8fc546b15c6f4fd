/* The in-kernel interrupt controller of an arm64 VM: a GICv3 (distributor + one redistributor
 * per vCPU) or a GICv2 (distributor + CPU interface) created with KVM_CREATE_DEVICE, and for PCI
 * a GICv3 ITS that turns MSI writes (device id + event id) into LPIs. KVM wants the addresses
 * before the vCPUs run and the final initialization (CTRL_INIT) after every vCPU exists:
 * arm64_gic_create() (and arm64_gic_add_its()) come first, arm64_gic_finalize() after the
 * vCPUs; it initializes the GIC, then the ITS. */
#ifndef SKIFF_ARM64_GIC_H
#define SKIFF_ARM64_GIC_H

#include "arch/arm64/fdt.h"
#include "config/vm_config.h"

struct arm64_gic {
	int fd;
	int its_fd; /* -1: no ITS */
	enum arm64_gic_version version;
};

/* Creates the GIC `want` asks for (auto: v3, else v2 when this host's KVM cannot emulate a
 * v3) and places it for nr_cpus vCPUs. Logs one line and returns -errno on failure. */
int arm64_gic_create(int vm_fd, enum irqchip_kind want, int nr_cpus, struct arm64_gic *gic);

/* Adds an ITS at ARM64_GIC_ITS_BASE to a GICv3 (a GICv2 has none: -ENODEV with one logged
 * line). From then on KVM wants a device id in every MSI route (KVM_MSI_VALID_DEVID). */
int arm64_gic_add_its(int vm_fd, struct arm64_gic *gic);

/* Sets the number of interrupts and initializes the GIC: call once all vCPUs are created. */
int arm64_gic_finalize(struct arm64_gic *gic);

void arm64_gic_destroy(struct arm64_gic *gic);

#endif
