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
	/* Set by the vCPU thread itself under vm->pause_lock once it runs its loop (vm.c): only
	 * then may another thread than the one that started it kick it (vcpu_kick_running). */
	bool running;
	pthread_t self;
};

int vcpu_create(struct vm *vm, struct vcpu *vcpu, int id);
void vcpu_destroy(struct vcpu *vcpu);

int vcpu_start(struct vcpu *vcpu);
/* Makes the vCPU leave KVM_RUN promptly (immediate_exit plus a signal). */
void vcpu_kick(struct vcpu *vcpu);
void vcpu_join(struct vcpu *vcpu);
/* vcpu_kick() for a vCPU whose thread has set `running`, from any thread (vm_pause). */
void vcpu_kick_running(struct vcpu *vcpu);

/* Installs the no-op handler for the kick signal; call once before starting vCPUs. */
int vcpu_signal_setup(void);

#endif
