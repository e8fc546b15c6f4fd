/* seccomp filters per thread role (libseccomp). Each of skiff's threads puts on itself, before it
 * touches guest or caller input, a filter that lets through only the system calls its role makes
 * (base/seccomp_rules.c lists them, docs/security-seccomp.md says why): the vCPUs, the device
 * workers, the API server and the metrics flusher in thread_start()'s trampoline, the main thread
 * in instance_run() once the VM is described (and, on the command line, built).
 *
 * Levels, as Firecracker's --seccomp-level: 0 no filter; 1 system calls only; 2 (the default)
 * also the values of the arguments that say what a call does: ioctl's request, fcntl's command,
 * socket's domain, prctl's option, io_uring_register's operation. A filter also sets no_new_privs.
 *
 * A violation: the kernel stops the call and raises SIGSYS in the thread (SECCOMP_RET_TRAP); the
 * handler writes one line naming the call (number and name) and the thread's role to stderr and
 * to the log file, then ends skiff with status 159 (128 + SIGSYS). RET_TRAP rather than
 * RET_KILL_PROCESS: a killed process leaves a line only in the kernel's audit log, if auditing is
 * on; the handler's line is where the user looks.
 *
 * Test-only: SKIFF_SECCOMP_TEST_VIOLATION=ROLE (vcpu, device-worker, api, metrics, main) makes the
 * first thread of that role make a forbidden call (personality(2)) right after its filter is on;
 * ROLE:ioctl makes it an ioctl whose request no role may use (killed at level 2, let through at
 * level 1). tests/cli uses it to show that every role's filter is on and kills. ROLE:fault makes
 * it write to address 0 instead (at level 0 too), for tests/cli's check of the crash report
 * (base/crash.h). */
#ifndef SKIFF_BASE_SECCOMP_H
#define SKIFF_BASE_SECCOMP_H

#include "base/thread.h"

#include <stdbool.h>

#define SECCOMP_LEVEL_DEFAULT	 2
#define SECCOMP_VIOLATION_STATUS 159

/* Sets the level (0, 1 or 2) for the filters installed from now on, and reads the test-only
 * SKIFF_SECCOMP_TEST_VIOLATION. Call once, on the main thread, before any thread starts.
 * Returns 0 or -EINVAL. Without it (the unit and kvm tests) the level is SECCOMP_LEVEL_DEFAULT,
 * but a kernel that refuses filters (qemu-user's) is let be; after it, a filter that cannot be
 * installed is an error. */
int seccomp_configure(int level);
int seccomp_level(void);

/* Puts role's filter on the calling thread (after the SIGSYS handler, once per process); `name`
 * (the thread's, cut to 15 characters) is for the violation's line. Returns 0 (also at level 0,
 * where nothing is installed) or -errno after one logged line. */
int seccomp_install(enum thread_role role, const char *name);

/* The calling thread's role and name as seccomp_install() recorded them (THREAD_MAIN and "skiff"
 * for a thread that never installed a filter): for the reports made in signal handlers. */
enum thread_role seccomp_thread_role(void);
const char *seccomp_thread_name(void);

/* The filter of `role` at `level` as BPF, written to fd (for tests and for reading: `skiff` does
 * not call it). 0 or -errno. */
int seccomp_export(enum thread_role role, int level, int fd);

#endif
