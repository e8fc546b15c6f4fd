/* The in-kernel interrupt controller of an arm64 VM: a GICv3 (distributor + one redistributor
 * per vCPU) or a GICv2 (distributor + CPU interface) created with KVM_CREATE_DEVICE. KVM wants
 * the addresses before the vCPUs run and the final initialization (CTRL_INIT) after every vCPU
 * exists: arm64_gic_create() comes first, arm64_gic_finalize() after the vCPUs. */
#ifndef SKIFF_ARM64_GIC_H
#define SKIFF_ARM64_GIC_H

#include "arch/arm64/fdt.h"
#include "config/vm_config.h"

struct arm64_gic {
	int fd;
	enum arm64_gic_version version;
};

/* Creates the GIC `want` asks for (auto: v3, else v2 when this host's KVM cannot emulate a
 * v3) and places it for nr_cpus vCPUs. Logs one line and returns -errno on failure. */
int arm64_gic_create(int vm_fd, enum irqchip_kind want, int nr_cpus, struct arm64_gic *gic);

/* Sets the number of interrupts and initializes the GIC: call once all vCPUs are created. */
int arm64_gic_finalize(struct arm64_gic *gic);

void arm64_gic_destroy(struct arm64_gic *gic);

#endif
