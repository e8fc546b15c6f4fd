/* vCPUs: one thread each, running KVM_RUN and dispatching exits (port I/O and MMIO to the buses,
 * halts, shutdowns and errors to the VM's stop state). */
#ifndef SKIFF_VCPU_H
#define SKIFF_VCPU_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stdbool.h>

struct vm;

struct vcpu {
	struct vm *vm;
	int id;
	int fd;
	struct kvm_run *run;
	pthread_t thread;
	bool thread_started;
};

int vcpu_create(struct vm *vm, struct vcpu *vcpu, int id);
void vcpu_destroy(struct vcpu *vcpu);

int vcpu_start(struct vcpu *vcpu);
/* Makes the vCPU leave KVM_RUN promptly (immediate_exit plus a signal). */
void vcpu_kick(struct vcpu *vcpu);
void vcpu_join(struct vcpu *vcpu);

/* Installs the no-op handler for the kick signal; call once before starting vCPUs. */
int vcpu_signal_setup(void);

#endif
