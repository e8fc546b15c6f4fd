/* CPUID for each vCPU: what the host's KVM supports (KVM_GET_SUPPORTED_CPUID), with the topology
 * leaves rewritten per vCPU (APIC IDs, one package of N single-thread cores) and the hypervisor
 * bit set. The rewriting is a pure function over the entry table, tested without KVM. */
#ifndef SKIFF_X86_CPUID_H
#define SKIFF_X86_CPUID_H

#include <linux/kvm.h>

#define X86_CPUID_MAX_ENTRIES 256

struct x86_cpuid {
	struct kvm_cpuid2 header;
	struct kvm_cpuid_entry2 entries[X86_CPUID_MAX_ENTRIES];
};

/* KVM_GET_SUPPORTED_CPUID on the /dev/kvm fd. */
int x86_cpuid_get_supported(int kvm_fd, struct x86_cpuid *out);

/* Rewrites `c` (a copy of the supported table) for vCPU `index` of `nr_cpus`. */
void x86_cpuid_fixup(struct x86_cpuid *c, int index, int nr_cpus);

/* Looks up leaf/subleaf in the table; NULL when absent. */
struct kvm_cpuid_entry2 *x86_cpuid_find(struct x86_cpuid *c, unsigned function, unsigned index);

#endif
