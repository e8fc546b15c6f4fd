/* The x86 machine state KVM holds, as sections of the saved-state layout (base/state.h): what a
 * snapshot or a migration carries besides guest memory and the devices.
 *
 * A vCPU (tag ARCH_STATE_VCPU): general, segment and control registers, the FPU/SSE/AVX state
 * (XSAVE, or the legacy FPU layout where KVM has no XSAVE), XCR0, every MSR KVM lists
 * (KVM_GET_MSR_INDEX_LIST, which includes the TSC, the SYSCALL MSRs, kvmclock's and the APIC's
 * TSC deadline), the local APIC's registers, pending events (exceptions, NMIs, interrupts in
 * flight), the MP state (running, halted, waiting for SIPI) and the debug registers.
 *
 * The VM (tag ARCH_STATE_VM): kvmclock, and with the in-kernel irqchip the two PICs, the I/O
 * APIC and the PIT.
 *
 * KVM's own structures go in as length-prefixed blobs: their layout is KVM's ABI, fixed per
 * architecture, and a reader refuses a blob whose length is not the one this build knows.
 *
 * Every function runs with the vCPUs out of KVM_RUN (a paused VM, or one not started) and
 * returns 0 or -errno after one line as the thread's last error (log_set_error). A restore
 * writes KVM state in the order KVM needs (the MP state and registers before the local APIC,
 * the APIC before the MSRs that depend on it, events last); a section that fails to read
 * changes nothing. */
#ifndef SKIFF_X86_CPU_STATE_H
#define SKIFF_X86_CPU_STATE_H

#include <stdbool.h>

struct state_reader;
struct state_writer;

/* has_lapic: the VM has the in-kernel irqchip, so each vCPU a local APIC in KVM (a bare-metal
 * guest without one keeps no APIC state). */
int x86_vcpu_state_save(int kvm_fd, int vcpu_fd, int vcpu_id, int has_lapic,
			struct state_writer *w);
int x86_vcpu_state_restore(int kvm_fd, int vcpu_fd, int vcpu_id, int has_lapic,
			   struct state_reader *r);

int x86_vm_state_save(int vm_fd, int has_irqchip, struct state_writer *w);
/* clock_realtime: kvmclock moves on by the host's real time since the save (Firecracker's
 * clock_realtime), else it goes on from the value saved. */
int x86_vm_state_restore(int vm_fd, int has_irqchip, bool clock_realtime,
			 struct state_reader *r);

#endif
