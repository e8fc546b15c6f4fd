/* One way to start skiff's threads, each with its role: the vCPUs, the device workers (one event
 * loop per virtio device, base/event_loop.h), the API server and the metrics flusher. Every
 * thread skiff starts goes through thread_start(), so that what a role may do is decided at one
 * place: its name, its signal mask and its seccomp filter (base/seccomp.h), which the new thread
 * installs on itself in thread_start's trampoline before it runs `fn`. The main thread has a role
 * too (THREAD_MAIN), for its own filter; it is not started here.
 *
 * Signals: a vCPU thread inherits the caller's signal mask (it unblocks its kick signal itself);
 * every other role starts with all signals blocked, as skiff's main thread takes the termination
 * signals from a signalfd and vCPUs are kicked with a signal of their own. SIGSYS and the fault
 * signals are unblocked in every thread: a seccomp violation and a crash must reach their
 * handlers (base/seccomp.h, base/crash.h). */
#ifndef SKIFF_BASE_THREAD_H
#define SKIFF_BASE_THREAD_H

#include <pthread.h>

enum thread_role {
	THREAD_VCPU,
	THREAD_DEVICE_WORKER,
	THREAD_API,
	THREAD_METRICS,
	THREAD_MAIN,
	THREAD_GDB, /* the GDB stub (vmm/gdb_stub.h): its socket, the vCPUs' registers */
	/* Live migration (vmm/migration.h): its socket, the dirty log, pausing and saving the VM
	 * (the source), building the VM that arrives (the destination). */
	THREAD_MIGRATION,
	THREAD_NR_ROLES
};

/* "vcpu", "device-worker", "api", "metrics", "main", "gdb", "migration": for log lines. */
const char *thread_role_name(enum thread_role role);

/* Starts fn(arg) on a new joinable thread named `name` (what ps and top show; cut to 15
 * characters) and stores it in *out. The thread puts on its role's seccomp filter first; if it
 * cannot, it logs why and ends skiff (exit status 1): no thread runs unfiltered when filters are
 * on. Returns 0 or -errno; logs nothing, the caller says what could not start. THREAD_MAIN is
 * refused (-EINVAL). */
int thread_start(enum thread_role role, const char *name, void *(*fn)(void *), void *arg,
		 pthread_t *out);

#endif
