/* vCPUs: one thread each, running KVM_RUN and dispatching exits (port I/O and MMIO to the buses,
 * halts, shutdowns and errors to the VM's stop state). */
#ifndef SKIFF_VCPU_H
#define SKIFF_VCPU_H

#include "base/power.h"

#include <linux/kvm.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct bus;
struct coalesced;
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

/* Where every vCPU of a VM parks while the VM is paused, and learns that it is stopping. The VM
 * owns one; vcpus_pause()/vcpus_resume() drive it, and each vCPU thread calls into it where it
 * has no exit pending (before its first KVM_RUN, after a KVM_RUN that a kick interrupted). */
struct vcpu_gate {
	pthread_mutex_t lock;
	pthread_cond_t resume_cond; /* parked vCPUs wait here */
	pthread_cond_t parked_cond; /* vcpus_pause() waits here */
	bool pause_requested;
	bool stopping; /* for good: parked vCPUs leave, vcpus_pause() stops waiting */
	int nr_active; /* vCPU threads started and not yet ended */
	int nr_parked;
};

/* What a vCPU is given by its VM: the VM's fd and the size of the kvm_run area, the buses its
 * exits go to, how it asks the VM to stop, the gate it parks at, and where the boot vCPU writes
 * the process CPU time and the uptime (base/uptime.h) of its first KVM_RUN. */
struct vcpu_host {
	int vm_fd;
	size_t run_size;
	struct bus *pio;
	struct bus *mmio;
	struct power_ctl power;
	struct vcpu_gate *gate;
	struct coalesced *coalesced; /* batched writes to replay after each KVM_RUN (or NULL) */
	uint64_t *first_run_cpu_ns;
	uint64_t *first_run_us;
};

struct vcpu {
	struct vcpu_host host;
	int id;
	int fd;
	struct kvm_run *run;
	/* With a debugger (vmm/gdb_stub.h; set before the thread starts): KVM_EXIT_DEBUG is told to
	 * debug_exit() on the vCPU's thread, and the vCPU then parks until the VM resumes. */
	void (*debug_exit)(void *ctx, struct vcpu *vcpu);
	void *debug_ctx;
	pthread_t thread;
	bool thread_started;
	/* Cumulative exits by kind: written by the vCPU thread only, read by anyone, both with
	 * relaxed atomics (a reader sees each counter whole, not all of them at one instant). */
	uint64_t exits[VCPU_EXIT_NR];
	/* Set by the vCPU thread itself under the gate's lock once it runs its loop: only then may
	 * another thread than the one that started it kick it. */
	bool running;
	pthread_t self;
};

int vcpu_create(struct vcpu *vcpu, const struct vcpu_host *host, int id);
void vcpu_destroy(struct vcpu *vcpu);

int vcpu_start(struct vcpu *vcpu);
/* Counts the exit `run` describes in vcpu->exits; called by the vCPU's thread for every exit. */
void vcpu_count_exit(struct vcpu *vcpu, const struct kvm_run *run);
/* Makes the vCPU leave KVM_RUN promptly (immediate_exit plus a signal). */
void vcpu_kick(struct vcpu *vcpu);
void vcpu_join(struct vcpu *vcpu);

int vcpu_gate_init(struct vcpu_gate *gate);
void vcpu_gate_destroy(struct vcpu_gate *gate);
/* For good: parked vCPUs leave their loop, a vcpus_pause() in progress gives up, and every vCPU
 * ends its loop at its next stop check. Safe from any thread. */
void vcpu_gate_stop(struct vcpu_gate *gate);
bool vcpu_gate_stopping(struct vcpu_gate *gate);
/* Every running vCPU leaves KVM_RUN (a signal plus immediate_exit, no busy waiting) and parks;
 * returns 0 once all have, or -ESHUTDOWN when the gate was stopped meanwhile. A vCPU that has not
 * run yet parks before its first KVM_RUN. Not from a vCPU thread; one caller at a time. */
int vcpus_pause(struct vcpu_gate *gate, struct vcpu *vcpus, int nr);
/* The parked vCPUs go on. */
void vcpus_resume(struct vcpu_gate *gate);

/* Installs the no-op handler for the kick signal; call once before starting vCPUs. */
int vcpu_signal_setup(void);

#endif
