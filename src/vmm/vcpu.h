/* vCPUs: one thread each, running KVM_RUN and dispatching exits (port I/O and MMIO to the buses,
 * halts, shutdowns and errors to the VM's stop state). */
#ifndef SKIFF_VCPU_H
#define SKIFF_VCPU_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct vm;

/* VM exits by kind, for metrics. */
enum vcpu_exit_kind {
	VCPU_EXIT_IO_IN,
	VCPU_EXIT_IO_OUT,
	VCPU_EXIT_MMIO_READ,
	VCPU_EXIT_MMIO_WRITE,
	VCPU_EXIT_HLT,
	VCPU_EXIT_INTR,
	VCPU_EXIT_SYSTEM_EVENT,
	VCPU_EXIT_SHUTDOWN,
	VCPU_EXIT_INTERNAL_ERROR,
	VCPU_EXIT_FAIL_ENTRY,
	VCPU_EXIT_OTHER,
	VCPU_EXIT_NR
};

struct vcpu {
	struct vm *vm;
	int id;
	int fd;
	struct kvm_run *run;
	pthread_t thread;
	bool thread_started;
	/* Cumulative exits by kind: written by the vCPU thread only, read by anyone, both with
	 * relaxed atomics (a reader sees each counter whole, not all of them at one instant). */
	uint64_t exits[VCPU_EXIT_NR];
};

int vcpu_create(struct vm *vm, struct vcpu *vcpu, int id);
void vcpu_destroy(struct vcpu *vcpu);

int vcpu_start(struct vcpu *vcpu);
/* Counts the exit `run` describes in vcpu->exits; called by the vCPU's thread for every exit. */
void vcpu_count_exit(struct vcpu *vcpu, const struct kvm_run *run);
/* Makes the vCPU leave KVM_RUN promptly (immediate_exit plus a signal). */
void vcpu_kick(struct vcpu *vcpu);
void vcpu_join(struct vcpu *vcpu);

/* Installs the no-op handler for the kick signal; call once before starting vCPUs. */
int vcpu_signal_setup(void);

#endif
