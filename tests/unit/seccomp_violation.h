/* For the seccomp unit tests: a child process that breaks a role's filter, and what it said. */
#ifndef SKIFF_TESTS_SECCOMP_VIOLATION_H
#define SKIFF_TESTS_SECCOMP_VIOLATION_H

#include "base/thread.h"

#include <stddef.h>

/* Forks a child that sets seccomp level 2 and starts a thread of `role` named "skiff-test"
 * which calls personality(2). Returns the child's exit status (-1 if it did not exit), its
 * stderr in err (len bytes at most, terminated). */
int seccomp_violate_in_child(enum thread_role role, char *err, size_t len);

#endif
