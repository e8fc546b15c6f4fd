/* What each thread role may call: the tables base/seccomp.c builds its filters from. One entry
 * per system call (by name: a name the target architecture lacks, such as open on arm64, is
 * skipped) with the roles that make it; and, for the calls whose arguments level 2 checks (ioctl's
 * request, fcntl's command, socket's domain, prctl's option), one entry per value with the roles
 * that use it. docs/security-seccomp.md says why each role needs what it has. */
#ifndef SKIFF_BASE_SECCOMP_RULES_H
#define SKIFF_BASE_SECCOMP_RULES_H

#include <stddef.h>

#define ROLE_BIT(r) (1u << (r))

struct seccomp_call {
	const char *name;
	unsigned roles; /* ROLE_BIT(enum thread_role)... */
};

struct seccomp_arg_value {
	const char *call; /* "ioctl", "fcntl", "socket", "prctl" or "io_uring_register" */
	unsigned arg;	  /* which argument: 1 (request, command) or 0 (domain, option) */
	unsigned long value;
	const char *value_name;
	unsigned roles;
};

extern const struct seccomp_call seccomp_calls[];
extern const size_t seccomp_nr_calls;
extern const struct seccomp_arg_value seccomp_arg_values[];
extern const size_t seccomp_nr_arg_values;

#endif
