#include "base/thread.h"
#include "base/crash.h"
#include "base/seccomp.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

struct thread_start_args {
	enum thread_role role;
	char name[16];
	void *(*fn)(void *);
	void *arg;
};

const char *thread_role_name(enum thread_role role)
{
	switch (role) {
	case THREAD_VCPU:
		return "vcpu";
	case THREAD_DEVICE_WORKER:
		return "device-worker";
	case THREAD_API:
		return "api";
	case THREAD_METRICS:
		return "metrics";
	case THREAD_MAIN:
		return "main";
	case THREAD_GDB:
		return "gdb";
	case THREAD_MIGRATION:
		return "migration";
	case THREAD_NR_ROLES:
		break;
	}
	return "unknown";
}

/* The first code every skiff thread runs: where its role's restrictions (the seccomp filter) are
 * put on it, before it touches guest or caller input. */
static void *trampoline(void *p)
{
	struct thread_start_args a = *(struct thread_start_args *)p;
	sigset_t sys;

	free(p);
	/* Named by itself (prctl), not by its creator: the main thread's filter has no open() for
	 * /proc/self/task/N/comm, and the name is there for the first log line. */
	pthread_setname_np(pthread_self(), a.name);
	sigemptyset(&sys);
	sigaddset(&sys, SIGSYS);
	pthread_sigmask(SIG_UNBLOCK, &sys, NULL);
	crash_unblock();
	if (seccomp_install(a.role, a.name))
		exit(1); /* seccomp_install logged why */
	return a.fn(a.arg);
}

int thread_start(enum thread_role role, const char *name, void *(*fn)(void *), void *arg,
		 pthread_t *out)
{
	struct thread_start_args *a;
	sigset_t all, old;
	int err;

	if (role == THREAD_MAIN || role == THREAD_NR_ROLES)
		return -EINVAL;
	a = malloc(sizeof(*a));
	if (!a)
		return -ENOMEM;
	*a = (struct thread_start_args){.role = role, .fn = fn, .arg = arg};
	/* pthread_setname_np refuses names over 15 characters: cut, rather than go unnamed. */
	snprintf(a->name, sizeof(a->name), "%s", name);
	if (role != THREAD_VCPU) {
		sigfillset(&all);
		pthread_sigmask(SIG_SETMASK, &all, &old);
	}
	err = pthread_create(out, NULL, trampoline, a);
	if (role != THREAD_VCPU)
		pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err) {
		free(a);
		return -err;
	}
	return 0;
}
