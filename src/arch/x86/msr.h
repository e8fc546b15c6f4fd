/* The MSR values a vCPU starts with, as Linux expects them from firmware: syscall MSRs cleared,
 * fast strings enabled, MTRRs enabled with write-back as the default type. Only MSRs the host's
 * KVM lists (KVM_GET_MSR_INDEX_LIST) are written. */
#ifndef SKIFF_X86_MSR_H
#define SKIFF_X86_MSR_H

int x86_msr_setup(int kvm_fd, int vcpu_fd);

#endif
