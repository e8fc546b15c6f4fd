#include "base/thread.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

struct thread_start_args {
	enum thread_role role;
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
	}
	return "unknown";
}

/* The first code every skiff thread runs: where its role's restrictions (the seccomp filter, once
 * there is one) are put on it, before it touches guest or caller input. */
static void *trampoline(void *p)
{
	struct thread_start_args a = *(struct thread_start_args *)p;

	free(p);
	return a.fn(a.arg);
}

int thread_start(enum thread_role role, const char *name, void *(*fn)(void *), void *arg,
		 pthread_t *out)
{
	struct thread_start_args *a = malloc(sizeof(*a));
	sigset_t all, old;
	char short_name[16];
	int err;

	if (!a)
		return -ENOMEM;
	*a = (struct thread_start_args){.role = role, .fn = fn, .arg = arg};
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
	/* pthread_setname_np refuses names over 15 characters: cut, rather than go unnamed. */
	size_t len = strnlen(name, sizeof(short_name) - 1);

	memcpy(short_name, name, len);
	short_name[len] = '\0';
	pthread_setname_np(*out, short_name);
	return 0;
}
