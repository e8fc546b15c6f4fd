/* The arm64 machine state KVM holds, as sections of the saved-state layout (base/state.h): what a
 * snapshot carries besides guest memory and the devices.
 *
 * A vCPU (tag ARCH_STATE_VCPU): every register KVM_GET_REG_LIST names for it (the core
 * registers, FP/SIMD, the system registers, the timers' KVM_REG_ARM_TIMER_CTL/CVAL/CNT and the
 * firmware pseudo-registers: PSCI version, SMCCC workarounds and feature bitmaps), each with the
 * size its id says; the MP state (PSCI on or off: secondaries not yet started are off); and the
 * pending SError / external abort (KVM_GET_VCPU_EVENTS) where KVM has vCPU events.
 *
 * The VM (tag ARCH_STATE_VM): the host's real time and counter frequency at the save (for
 * clock_realtime), and with the in-kernel GICv3 its distributor, each vCPU's redistributor and
 * CPU interface registers and the SPIs' line levels (arm-vgic-v3.rst); with an ITS (PCI) its
 * GITS registers, after KVM wrote its tables and the LPIs' pending bits to guest RAM
 * (arm-vgic-its.rst's save and restore sequences). A GICv2 is refused.
 *
 * Registers are read from and written back to KVM through its own ids and attributes; a reader
 * refuses a section whose register list is not the one this VM has on this host (another
 * kernel, another GIC), so nothing is ever half-written. Every function runs with the vCPUs out
 * of KVM_RUN and returns 0 or -errno after one line as the thread's last error
 * (log_set_error). */
#ifndef SKIFF_ARM64_CPU_STATE_H
#define SKIFF_ARM64_CPU_STATE_H

#include "arch/arm64/gic.h"

#include <stdbool.h>
#include <stdint.h>

struct state_reader;
struct state_writer;

/* A vCPU's registers, MP state and events. */
int arm64_vcpu_state_save(int vm_fd, int vcpu_fd, int vcpu_id, struct state_writer *w);
/* counter_delta: ticks added to the saved virtual counter (clock_realtime; 0: the guest's time
 * goes on from the save). The counter is written last, after everything it is compared with. */
int arm64_vcpu_state_restore(int vm_fd, int vcpu_fd, int vcpu_id, uint64_t counter_delta,
			     struct state_reader *r);

/* gic NULL: a VM without an interrupt controller (a bare-metal guest). mpidr: each vCPU's
 * MPIDR_EL1, which names its redistributor to KVM. */
int arm64_vm_state_save(const struct arm64_gic *gic, const uint64_t *mpidr, int nr_vcpus,
			struct state_writer *w);
/* *counter_delta: with clock_realtime, the host's real time since the save in counter ticks,
 * for arm64_vcpu_state_restore; else 0. */
int arm64_vm_state_restore(const struct arm64_gic *gic, const uint64_t *mpidr, int nr_vcpus,
			   bool clock_realtime, uint64_t *counter_delta, struct state_reader *r);

/* The 32-bit affinity KVM's vGIC attributes carry in their top half (Aff3.Aff2.Aff1.Aff0) for
 * an MPIDR_EL1 value. */
uint32_t arm64_gic_attr_affinity(uint64_t mpidr);

#endif
