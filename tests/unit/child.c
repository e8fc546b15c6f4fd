/* A child process for a test, and its stderr (see child.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "child.h"

#include <sys/wait.h>
#include <unistd.h>

int run_in_child(void (*body)(void *arg), void *arg, char *err, size_t len, pid_t *child)
{
	int fds[2], status;
	size_t n = 0;
	ssize_t r;
	pid_t pid;

	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(fds[1], STDERR_FILENO);
		close(fds[0]);
		body(arg);
		_exit(0);
	}
	close(fds[1]);
	/* To its end: the child may write in more than one go. */
	while (n < len - 1 && (r = read(fds[0], err + n, len - 1 - n)) > 0)
		n += (size_t)r;
	err[n] = '\0';
	close(fds[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (child)
		*child = pid;
	return status;
}
