/* One way to start skiff's threads, each with its role: the vCPUs, the device workers (one event
 * loop per virtio device, base/event_loop.h), the API server and the metrics flusher. Every
 * thread skiff starts goes through thread_start(), so that what a role may do is decided at one
 * place: today its name and signal mask; later the per-role seccomp filter, which the new thread
 * installs on itself in thread_start's trampoline before it runs `fn` (see thread.c).
 *
 * Signals: a vCPU thread inherits the caller's signal mask (it unblocks its kick signal itself);
 * every other role starts with all signals blocked, as skiff's main thread takes the termination
 * signals from a signalfd and vCPUs are kicked with a signal of their own. */
#ifndef SKIFF_BASE_THREAD_H
#define SKIFF_BASE_THREAD_H

#include <pthread.h>

enum thread_role {
	THREAD_VCPU,
	THREAD_DEVICE_WORKER,
	THREAD_API,
	THREAD_METRICS,
};

/* "vcpu", "device-worker", "api", "metrics": for log lines. */
const char *thread_role_name(enum thread_role role);

/* Starts fn(arg) on a new joinable thread named `name` (what ps and top show; cut to 15
 * characters) and stores it in *out. Returns 0 or -errno; logs nothing, the caller says what
 * could not start. */
int thread_start(enum thread_role role, const char *name, void *(*fn)(void *), void *arg,
		 pthread_t *out);

#endif
