/* A virtiofsd that skiff starts for --fs tag=NAME,dir=PATH: found on PATH, in /usr/libexec or
 * /usr/lib/qemu (Debian 12's qemu-system-common), started as a child process serving PATH on a
 * vhost-user socket in a private directory (mkdtemp under $TMPDIR or /tmp), and stopped (SIGTERM,
 * then SIGKILL) when the device goes. Its death is noticed by the device (the socket closes) and
 * logged here with its exit status (virtiofsd_reap).
 *
 * Start it before the thread's seccomp filter is on: the filter forbids execve, and a child
 * inherits its parent thread's filter (skiff builds a VM from the command line or a config file
 * before the main thread's filter goes on).
 *
 * Errors: -errno and one line as the thread's last error (log_set_error). */
#ifndef SKIFF_VIRTIO_VIRTIOFSD_H
#define SKIFF_VIRTIO_VIRTIOFSD_H

#include "config/vm_config.h"

#include <stdbool.h>
#include <sys/types.h>

struct virtiofsd {
	pid_t pid; /* 0: none (or reaped) */
	char dir[64];
	char socket[VM_CONFIG_MAX_SOCKET];
	char name[48]; /* for messages */
};

/* Where the program is: $SKIFF_VIRTIOFSD if set, else the first virtiofsd on PATH, in
 * /usr/libexec or /usr/lib/qemu. Returns 0 with `path` filled, or -ENOENT (reason set). */
int virtiofsd_find(char *path, size_t size);

/* Starts one serving `shared_dir` and waits (up to 5 s) for its socket. */
int virtiofsd_start(struct virtiofsd *v, const char *shared_dir, const char *name);

/* Collects its exit status if it has ended, logging how; true when it has. Never blocks. */
bool virtiofsd_reap(struct virtiofsd *v);

/* Stops it (if still running), waits for it and removes its directory. */
void virtiofsd_stop(struct virtiofsd *v);

#endif
