#include "arch/x86/cpuid.h"
#include "base/log.h"

#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>

#define CPUID_1_ECX_HYPERVISOR	   (1u << 31)
#define CPUID_1_EDX_HTT		   (1u << 28)
#define CPUID_80000001_ECX_TOPOEXT (1u << 22)
#define TOPOLOGY_LEVEL_SMT	   1
#define TOPOLOGY_LEVEL_CORE	   2

int x86_cpuid_get_supported(int kvm_fd, struct x86_cpuid *out)
{
	memset(out, 0, sizeof(*out));
	out->header.nent = X86_CPUID_MAX_ENTRIES;
	if (ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, &out->header) < 0) {
		int err = errno;

		log_error("KVM_GET_SUPPORTED_CPUID failed: %s", strerror(err));
		return -err;
	}
	return 0;
}

struct kvm_cpuid_entry2 *x86_cpuid_find(struct x86_cpuid *c, unsigned function, unsigned index)
{
	for (unsigned i = 0; i < c->header.nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];

		if (e->function == function &&
		    (!(e->flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) || e->index == index))
			return e;
	}
	return NULL;
}

/* Bits needed to number `n` things: ceil(log2(n)). */
static unsigned id_bits(int n)
{
	unsigned bits = 0;

	while ((1 << bits) < n)
		bits++;
	return bits;
}

static void remove_leaf(struct x86_cpuid *c, unsigned function)
{
	unsigned out = 0;

	for (unsigned i = 0; i < c->header.nent; i++)
		if (c->entries[i].function != function)
			c->entries[out++] = c->entries[i];
	c->header.nent = out;
}

/* Leaves 0xB and 0x1F: the x2APIC topology, one SMT level of one thread and a core level. */
static void fixup_extended_topology(struct x86_cpuid *c, unsigned leaf, int index, int nr_cpus)
{
	for (unsigned i = 0; i < c->header.nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];

		if (e->function != leaf)
			continue;
		e->edx = (unsigned)index;
		switch (e->index) {
		case 0:
			e->eax = 0;
			e->ebx = 1;
			e->ecx = TOPOLOGY_LEVEL_SMT << 8;
			break;
		case 1:
			e->eax = id_bits(nr_cpus);
			e->ebx = (unsigned)nr_cpus;
			e->ecx = (TOPOLOGY_LEVEL_CORE << 8) | 1;
			break;
		default:
			e->eax = e->ebx = 0;
			e->ecx = e->index;
			break;
		}
	}
}

void x86_cpuid_fixup(struct x86_cpuid *c, int index, int nr_cpus)
{
	struct kvm_cpuid_entry2 *e;

	e = x86_cpuid_find(c, 1, 0);
	if (e) {
		e->ebx &= 0x0000ffffu;
		e->ebx |= (unsigned)index << 24;
		e->ebx |= (unsigned)(nr_cpus > 1 ? nr_cpus : 1) << 16;
		e->ecx |= CPUID_1_ECX_HYPERVISOR;
		if (nr_cpus > 1)
			e->edx |= CPUID_1_EDX_HTT;
		else
			e->edx &= ~CPUID_1_EDX_HTT;
	}
	/* Leaf 4 (deterministic cache parameters): cores per package in EAX[31:26], threads
	 * sharing each cache in EAX[25:14]; here every cache is private to its core. */
	for (unsigned i = 0; i < c->header.nent; i++) {
		e = &c->entries[i];
		if (e->function != 4)
			continue;
		e->eax &= 0x00003fffu;
		if (e->eax & 0x1f)
			e->eax |= (unsigned)(nr_cpus - 1) << 26;
	}
	fixup_extended_topology(c, 0xb, index, nr_cpus);
	fixup_extended_topology(c, 0x1f, index, nr_cpus);

	/* AMD: the core count of the package lives in 0x80000008 ECX. The extended topology leaves
	 * 0x8000001D/E describe the host's caches and compute units, which do not match ours:
	 * hide them rather than describe a topology that isn't there. */
	e = x86_cpuid_find(c, 0x80000008, 0);
	if (e) {
		e->ecx &= ~0xf0ffu;
		e->ecx |= (unsigned)(nr_cpus - 1) & 0xff;
		e->ecx |= id_bits(nr_cpus) << 12;
	}
	e = x86_cpuid_find(c, 0x80000001, 0);
	if (e)
		e->ecx &= ~CPUID_80000001_ECX_TOPOEXT;
	remove_leaf(c, 0x8000001d);
	remove_leaf(c, 0x8000001e);
}
