#include "arch/x86/msr.h"
#include "base/log.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#define MSR_IA32_TSC	      0x10
#define MSR_IA32_SYSENTER_CS  0x174
#define MSR_IA32_SYSENTER_ESP 0x175
#define MSR_IA32_SYSENTER_EIP 0x176
#define MSR_IA32_MISC_ENABLE  0x1a0
#define MSR_MTRR_DEF_TYPE     0x2ff
#define MSR_STAR	      0xc0000081
#define MSR_LSTAR	      0xc0000082
#define MSR_CSTAR	      0xc0000083
#define MSR_SYSCALL_MASK      0xc0000084
#define MSR_KERNEL_GS_BASE    0xc0000102

#define MISC_ENABLE_FAST_STRING 1ULL
#define MTRR_ENABLE		(1ULL << 11)
#define MTRR_TYPE_WRBACK	6ULL

static const struct {
	uint32_t index;
	uint64_t value;
} boot_msrs[] = {
    {MSR_IA32_SYSENTER_CS, 0},
    {MSR_IA32_SYSENTER_ESP, 0},
    {MSR_IA32_SYSENTER_EIP, 0},
    {MSR_STAR, 0},
    {MSR_CSTAR, 0},
    {MSR_KERNEL_GS_BASE, 0},
    {MSR_SYSCALL_MASK, 0},
    {MSR_LSTAR, 0},
    {MSR_IA32_TSC, 0},
    {MSR_IA32_MISC_ENABLE, MISC_ENABLE_FAST_STRING},
    {MSR_MTRR_DEF_TYPE, MTRR_ENABLE | MTRR_TYPE_WRBACK},
};
#define NR_BOOT_MSRS (sizeof(boot_msrs) / sizeof(boot_msrs[0]))

static bool msr_listed(const struct kvm_msr_list *list, uint32_t index)
{
	for (uint32_t i = 0; i < list->nmsrs; i++)
		if (list->indices[i] == index)
			return true;
	return false;
}

int x86_msr_setup(int kvm_fd, int vcpu_fd)
{
	struct kvm_msr_list probe = {.nmsrs = 0}, *list;
	struct {
		struct kvm_msrs header;
		struct kvm_msr_entry entries[NR_BOOT_MSRS];
	} msrs;
	uint32_t n = 0;
	int ret;

	/* The first call fails with E2BIG and tells how many indices there are. */
	ioctl(kvm_fd, KVM_GET_MSR_INDEX_LIST, &probe);
	list = calloc(1, sizeof(*list) + probe.nmsrs * sizeof(uint32_t));
	if (!list)
		return -ENOMEM;
	list->nmsrs = probe.nmsrs;
	if (ioctl(kvm_fd, KVM_GET_MSR_INDEX_LIST, list) < 0) {
		ret = -errno;
		log_error("KVM_GET_MSR_INDEX_LIST failed: %s", strerror(errno));
		free(list);
		return ret;
	}
	memset(&msrs, 0, sizeof(msrs));
	for (size_t i = 0; i < NR_BOOT_MSRS; i++) {
		/* MTRRs are emulated by KVM but not always listed; the rest only when listed. */
		if (!msr_listed(list, boot_msrs[i].index) &&
		    boot_msrs[i].index != MSR_MTRR_DEF_TYPE)
			continue;
		msrs.entries[n].index = boot_msrs[i].index;
		msrs.entries[n].data = boot_msrs[i].value;
		n++;
	}
	free(list);
	msrs.header.nmsrs = n;
	ret = ioctl(vcpu_fd, KVM_SET_MSRS, &msrs);
	if (ret < 0) {
		ret = -errno;
		log_error("KVM_SET_MSRS failed: %s", strerror(errno));
		return ret;
	}
	if ((uint32_t)ret != n)
		log_debug("KVM_SET_MSRS set %d of %u boot MSRs", ret, n);
	return 0;
}
