/* A child that breaks a role's seccomp filter (see seccomp_violation.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "seccomp_violation.h"
#include "child.h"
#include "base/seccomp.h"

#include <sys/personality.h>
#include <sys/wait.h>

static void *forbidden(void *arg)
{
	personality(0xffffffff);
	return arg;
}

static void violate(void *arg)
{
	pthread_t t;

	seccomp_configure(2);
	if (thread_start(*(enum thread_role *)arg, "skiff-test", forbidden, NULL, &t) == 0)
		pthread_join(t, NULL);
	/* returns: the call was let through */
}

int seccomp_violate_in_child(enum thread_role role, char *err, size_t len)
{
	int status = run_in_child(violate, &role, err, len, NULL);

	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}
