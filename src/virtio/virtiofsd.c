#include "virtio/virtiofsd.h"
#include "base/log.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define START_TIMEOUT_MS 5000
#define STOP_TIMEOUT_MS	 2000
#define POLL_MS		 20

static void sleep_ms(long ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

static bool executable(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

int virtiofsd_find(char *path, size_t size)
{
	const char *env = getenv("SKIFF_VIRTIOFSD");
	const char *search = getenv("PATH");
	static const char *const fixed[] = {"/usr/libexec/virtiofsd", "/usr/lib/qemu/virtiofsd"};

	if (env && *env) {
		if (!executable(env))
			return log_set_error(-ENOENT, "SKIFF_VIRTIOFSD=%s is not an executable",
					     env);
		snprintf(path, size, "%s", env);
		return 0;
	}
	while (search && *search) {
		const char *end = strchr(search, ':');
		size_t len = end ? (size_t)(end - search) : strlen(search);

		if (len > 0 && (size_t)snprintf(path, size, "%.*s/virtiofsd", (int)len, search) < size &&
		    executable(path))
			return 0;
		search = end ? end + 1 : NULL;
	}
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
		if (executable(fixed[i])) {
			snprintf(path, size, "%s", fixed[i]);
			return 0;
		}
	}
	return log_set_error(-ENOENT,
			     "no virtiofsd on PATH, in /usr/libexec or /usr/lib/qemu (Debian: "
			     "apt-get install qemu-system-common); or start one and give "
			     "socket=PATH");
}

static void log_exit(const struct virtiofsd *v, int status)
{
	if (WIFEXITED(status))
		log_warn("%s: virtiofsd (pid %d) exited with status %d", v->name, (int)v->pid,
			 WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		log_warn("%s: virtiofsd (pid %d) was killed by signal %s", v->name, (int)v->pid,
			 strsignal(WTERMSIG(status)));
}

bool virtiofsd_reap(struct virtiofsd *v)
{
	int status;
	pid_t r;

	if (v->pid <= 0)
		return true;
	r = waitpid(v->pid, &status, WNOHANG);
	if (r == 0)
		return false;
	if (r == v->pid)
		log_exit(v, status);
	v->pid = 0;
	return true;
}

static void remove_dir(struct virtiofsd *v)
{
	if (v->socket[0])
		unlink(v->socket);
	if (v->dir[0])
		rmdir(v->dir);
	v->socket[0] = v->dir[0] = '\0';
}

static int spawn(struct virtiofsd *v, const char *prog, const char *shared_dir)
{
	char socket_arg[VM_CONFIG_MAX_SOCKET + 16];
	char *source_arg = NULL;
	posix_spawn_file_actions_t actions;
	posix_spawnattr_t attr;
	sigset_t none, defaults;
	int err;

	snprintf(socket_arg, sizeof(socket_arg), "--socket-path=%s", v->socket);
	if (asprintf(&source_arg, "source=%s", shared_dir) < 0)
		return log_set_error(-ENOMEM, "%s: out of memory", v->name);
	char *argv[] = {(char *)prog, socket_arg, "-o", source_arg, NULL};

	/* skiff blocks its termination signals (signalfd) and ignores SIGPIPE: the child gets
	 * the defaults, so that SIGTERM stops it. */
	sigemptyset(&none);
	sigfillset(&defaults);
	posix_spawnattr_init(&attr);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &defaults);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	posix_spawn_file_actions_init(&actions);
	posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
	err = posix_spawn(&v->pid, prog, &actions, &attr, argv, environ);
	posix_spawn_file_actions_destroy(&actions);
	posix_spawnattr_destroy(&attr);
	free(source_arg);
	if (err) {
		v->pid = 0;
		return log_set_error(-err, "%s: cannot start %s: %s", v->name, prog, strerror(err));
	}
	return 0;
}

int virtiofsd_start(struct virtiofsd *v, const char *shared_dir, const char *name)
{
	const char *tmp = getenv("TMPDIR");
	char prog[4096];
	int err;

	*v = (struct virtiofsd){0};
	snprintf(v->name, sizeof(v->name), "%s", name);
	if ((err = virtiofsd_find(prog, sizeof(prog))))
		return err;
	if (!tmp || !*tmp || strlen(tmp) > 32)
		tmp = "/tmp";
	snprintf(v->dir, sizeof(v->dir), "%s/skiff-fs-XXXXXX", tmp);
	if (!mkdtemp(v->dir)) {
		err = -errno;
		v->dir[0] = '\0';
		return log_set_error(err, "%s: a directory for virtiofsd's socket: %s", name,
				     strerror(-err));
	}
	snprintf(v->socket, sizeof(v->socket), "%s/vhost-user.sock", v->dir);
	if ((err = spawn(v, prog, shared_dir))) {
		remove_dir(v);
		return err;
	}
	for (int waited = 0; waited < START_TIMEOUT_MS; waited += POLL_MS) {
		struct stat st;

		if (stat(v->socket, &st) == 0 && S_ISSOCK(st.st_mode)) {
			log_info("%s: started %s (pid %d) on %s, socket %s", name, prog,
				 (int)v->pid, shared_dir, v->socket);
			return 0;
		}
		if (virtiofsd_reap(v)) {
			remove_dir(v);
			return log_set_error(-EIO,
					     "%s: %s ended before its socket was ready (its "
					     "messages are above)",
					     name, prog);
		}
		sleep_ms(POLL_MS);
	}
	virtiofsd_stop(v);
	return log_set_error(-ETIMEDOUT, "%s: %s did not open its socket within %d s", name, prog,
			     START_TIMEOUT_MS / 1000);
}

void virtiofsd_stop(struct virtiofsd *v)
{
	/* Its socket is closed by now, and virtiofsd ends when its frontend goes: give it a
	 * moment to do so on its own (and to take its sandbox's children with it). */
	for (int waited = 0; waited < STOP_TIMEOUT_MS / 2 && v->pid > 0; waited += POLL_MS)
		if (waitpid(v->pid, NULL, WNOHANG) == 0)
			sleep_ms(POLL_MS);
		else
			v->pid = 0;
	if (v->pid > 0) {
		kill(v->pid, SIGTERM);
		for (int waited = 0; waited < STOP_TIMEOUT_MS && v->pid > 0; waited += POLL_MS) {
			int status;

			if (waitpid(v->pid, &status, WNOHANG) != 0)
				v->pid = 0;
			else
				sleep_ms(POLL_MS);
		}
		if (v->pid > 0) {
			kill(v->pid, SIGKILL);
			waitpid(v->pid, NULL, 0);
			v->pid = 0;
		}
	}
	remove_dir(v);
}
