/* skiff-jailer: runs skiff (or any program given as --exec-file) in a jail, as Firecracker's
 * jailer runs Firecracker. The steps, in this order (docs/jailer.md has the file layout):
 *   arguments checked (status 2 on a bad one), inherited descriptors closed; the host's device
 *   numbers read; the tree <base>/<name>/<id>/root built with the program in it; rlimits; the
 *   cgroup joined; the network namespace joined; a new mount namespace with the jail as its
 *   root (pivot_root); the device nodes made; with --new-pid-ns or --daemonize a child (pid 1 of
 *   a new PID namespace with --new-pid-ns) whose host pid goes to /<name>.pid in the jail;
 *   privileges dropped; exec with an empty environment. Any failure: one line, status 1.
 * Without --daemonize a forking jailer waits for its child, passes it SIGTERM, SIGINT, SIGHUP
 * and SIGQUIT, and exits with its status (128 + N for a signal), so a supervisor sees one
 * process; it drops its own privileges as well once the pid file is written. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "jailer/args.h"
#include "jailer/cgroup.h"
#include "jailer/devices.h"
#include "jailer/fail.h"
#include "jailer/limits.h"
#include "jailer/namespaces.h"
#include "jailer/privileges.h"
#include "jailer/tree.h"

static volatile sig_atomic_t child_pid;

static void forward_signal(int sig)
{
	if (child_pid > 0)
		kill((pid_t)child_pid, sig);
}

static int fail(void)
{
	fprintf(stderr, "skiff-jailer: %s\n", jail_last_error());
	return 1;
}

static int write_pid_file(const char *name, pid_t pid)
{
	char path[PATH_MAX], text[32];
	int fd, n;

	snprintf(path, sizeof(path), "/%s.pid", name);
	n = snprintf(text, sizeof(text), "%d\n", (int)pid);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, text, (size_t)n) != n) {
		int ret = jail_fail(errno, "%s in the jail: %s", path, strerror(errno));

		if (fd >= 0)
			close(fd);
		return ret;
	}
	close(fd);
	return 0;
}

/* The forking jailer's parent: waits for the jailed program and mirrors how it ended. */
static int wait_for(const struct jail_args *a, pid_t pid)
{
	static const int forwarded[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT};
	struct sigaction sa = {.sa_handler = forward_signal};
	int status;

	child_pid = pid;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++)
		sigaction(forwarded[i], &sa, NULL);
	if (jail_drop_privileges(a->uid, a->gid))
		fprintf(stderr, "skiff-jailer: warning: %s\n", jail_last_error());
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR) {
			jail_fail(errno, "waitpid: %s", strerror(errno));
			return fail();
		}
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}

int main(int argc, char **argv)
{
	struct jail_args a;
	char root[PATH_MAX], program[PATH_MAX];
	char **exec_argv;
	char *empty_env[] = {NULL};
	int netns_fd = -1, null_fd = -1, ret;
	pid_t pid = 0;

	ret = jail_args_parse(argc, argv, &a);
	if (ret > 0)
		return 0;
	if (ret < 0) {
		fprintf(stderr, "skiff-jailer: %s\n", jail_last_error());
		return 2;
	}

	if (jail_close_inherited_fds())
		return fail();
	if (a.netns) {
		netns_fd = open(a.netns, O_RDONLY | O_CLOEXEC);
		if (netns_fd < 0) {
			jail_fail(errno, "--netns %s: %s", a.netns, strerror(errno));
			return fail();
		}
	}
	if (a.daemonize) {
		null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (null_fd < 0) {
			jail_fail(errno, "/dev/null: %s", strerror(errno));
			return fail();
		}
	}
	if (jail_devices_probe() || jail_tree_build(&a, root, sizeof(root)) ||
	    jail_limits_apply(&a))
		return fail();
	if (a.cgroup_wanted && jail_cgroup_join(&a))
		return fail();
	if (netns_fd >= 0) {
		if (jail_join_netns(netns_fd, a.netns))
			return fail();
		close(netns_fd);
	}
	if (jail_enter_mount_ns(root) || jail_devices_create(a.uid, a.gid))
		return fail();

	if (a.new_pid_ns && unshare(CLONE_NEWPID) != 0) {
		jail_fail(errno, "unshare(CLONE_NEWPID): %s", strerror(errno));
		return fail();
	}
	if (a.new_pid_ns || a.daemonize) {
		pid = fork();
		if (pid < 0) {
			jail_fail(errno, "fork: %s", strerror(errno));
			return fail();
		}
		if (pid > 0) {
			if (write_pid_file(a.exec_name, pid)) {
				kill(pid, SIGKILL);
				return fail();
			}
			return a.daemonize ? 0 : wait_for(&a, pid);
		}
	}
	if (a.daemonize) {
		if (setsid() < 0 || dup2(null_fd, 0) < 0 || dup2(null_fd, 1) < 0 ||
		    dup2(null_fd, 2) < 0)
			_exit(1);
		close(null_fd);
	}

	if (jail_drop_privileges(a.uid, a.gid))
		goto failed;
	snprintf(program, sizeof(program), "/%s", a.exec_name);
	exec_argv = calloc((size_t)a.exec_argc + 2, sizeof(*exec_argv));
	if (!exec_argv) {
		jail_fail(ENOMEM, "out of memory");
		goto failed;
	}
	exec_argv[0] = (char *)a.exec_name;
	for (int i = 0; i < a.exec_argc; i++)
		exec_argv[i + 1] = a.exec_argv[i];
	execve(program, exec_argv, empty_env);
	jail_fail(errno, "exec %s in the jail: %s", program, strerror(errno));
failed:
	return fail();
}
