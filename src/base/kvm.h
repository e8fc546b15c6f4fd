/* The KVM system handle: opening /dev/kvm with an error that says how to fix it, checking the API
 * version and every capability skiff relies on (naming the missing one), and telling the user
 * when this host's KVM has no hardware virtualization behind it. */
#ifndef SKIFF_KVM_H
#define SKIFF_KVM_H

#include <stdbool.h>

struct kvm {
	int fd;
	int vcpu_mmap_size;
	int max_vcpus;
};

/* Opens /dev/kvm (or $SKIFF_KVM_DEVICE) and checks the API version. -errno on failure, with one
 * line logged saying what to do. */
int kvm_open(struct kvm *kvm);
void kvm_close(struct kvm *kvm);

/* KVM_CHECK_EXTENSION on the system fd (or a VM fd); returns the capability's value (0 = no). */
int kvm_check_cap(int fd, long cap);

struct kvm_cap_need {
	long cap;
	const char *name; /* e.g. "KVM_CAP_IRQCHIP" */
};
/* Every capability in `needs` must be present; otherwise logs the first missing one by name and
 * returns -ENOTSUP. */
int kvm_require_caps(int fd, const struct kvm_cap_need *needs, int nr);

/* True when /proc/cpuinfo shows neither vmx nor svm: KVM is then a software implementation (such
 * as the kvm_pvm module) and guest kernel code runs emulated. `module` gets the vendor module's
 * name when one is found under /sys/module. */
bool kvm_host_is_software(char *module, int module_len);

#endif
