/* The seccomp filters compiled at build time: tools/seccomp-bpf runs libseccomp over
 * base/seccomp_rules.c for every role and level (1 and 2) and writes them as BPF programs, with
 * the target's system call names, into $(BUILD)/gen/seccomp_prebuilt.c, which only the skiff
 * program links. A thread then installs its filter with one system call, and no process compiles
 * a filter at start-up (libseccomp took about 0.3 ms of a tiny guest's 3 ms).
 *
 * The symbols are weak: code linked without the generated file (the unit and kvm tests, the
 * generator itself, a cross build with no way to run the target's generator) sees none and
 * base/seccomp.c compiles its filters with libseccomp at run time, from the same tables. */
#ifndef SKIFF_BASE_SECCOMP_PREBUILT_H
#define SKIFF_BASE_SECCOMP_PREBUILT_H

#include <linux/filter.h>
#include <stddef.h>

struct seccomp_prebuilt {
	unsigned role;	/* enum thread_role */
	unsigned level; /* 1 or 2 */
	unsigned short len;
	const struct sock_filter *insns;
};

#define SECCOMP_PREBUILT_NR_NAMES 512 /* above every syscall number of x86_64 and arm64 */

extern const struct seccomp_prebuilt seccomp_prebuilt[] __attribute__((weak));
extern const size_t seccomp_nr_prebuilt __attribute__((weak));
/* The target's name for each system call number below SECCOMP_PREBUILT_NR_NAMES, or NULL. */
extern const char *const seccomp_prebuilt_names[] __attribute__((weak));

#endif
