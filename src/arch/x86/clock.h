/* The x86 guest's clock across a pause: kvmclock (KVM_GET_CLOCK / KVM_SET_CLOCK, which the
 * guest's kvm-clock clocksource reads) and each vCPU's TSC (MSR_IA32_TSC, for a guest that reads
 * the TSC directly, e.g. with the tsc clocksource when the TSC is invariant). Restoring both
 * takes the paused time out of the guest's clock. The TSCs move back through their offsets
 * (KVM_VCPU_TSC_OFFSET) where KVM has them, else by writing MSR_IA32_TSC. */
#ifndef SKIFF_X86_CLOCK_H
#define SKIFF_X86_CLOCK_H

#include <linux/kvm.h>
#include <stdint.h>

struct vcpu;

struct x86_clock_state {
	struct kvm_clock_data kvmclock;
	uint64_t *tsc; /* per vCPU, nr_vcpus of them */
	int nr_vcpus;
};

/* Allocates room for nr_vcpus TSCs: 0 or -ENOMEM. */
int x86_clock_init(struct x86_clock_state *s, int nr_vcpus);
void x86_clock_destroy(struct x86_clock_state *s);

/* With every vCPU out of KVM_RUN. 0, or -errno after one logged line. */
int x86_clock_save(struct x86_clock_state *s, int vm_fd, struct vcpu *vcpus, int nr_vcpus);
int x86_clock_restore(const struct x86_clock_state *s, int vm_fd, struct vcpu *vcpus,
		      int nr_vcpus);

#endif
