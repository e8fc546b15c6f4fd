/* A child that breaks a role's seccomp filter (see seccomp_violation.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "seccomp_violation.h"
#include "base/seccomp.h"

#include <sys/personality.h>
#include <sys/wait.h>
#include <unistd.h>

static void *forbidden(void *arg)
{
	personality(0xffffffff);
	return arg;
}

int seccomp_violate_in_child(enum thread_role role, char *err, size_t len)
{
	int pipefd[2], status;
	pid_t pid;
	ssize_t n;

	assert_int_equal(pipe(pipefd), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		pthread_t t;

		dup2(pipefd[1], STDERR_FILENO);
		seccomp_configure(2);
		if (thread_start(role, "skiff-test", forbidden, NULL, &t) == 0)
			pthread_join(t, NULL);
		_exit(0); /* the call was let through */
	}
	close(pipefd[1]);
	n = read(pipefd[0], err, len - 1);
	err[n > 0 ? n : 0] = '\0';
	close(pipefd[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}
