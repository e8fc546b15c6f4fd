/* For unit tests of what ends a process (a seccomp kill, a crash report): `body` run in a forked
 * child, with what it wrote to stderr. */
#ifndef SKIFF_TESTS_CHILD_H
#define SKIFF_TESTS_CHILD_H

#include <stddef.h>
#include <sys/types.h>

/* Forks; the child runs body(arg) with stderr into a pipe, then _exit(0). Returns the child's
 * wait status (waitpid's), its stderr in err (len bytes at most, terminated) and, if `child` is
 * not NULL, its pid. */
int run_in_child(void (*body)(void *arg), void *arg, char *err, size_t len, pid_t *child);

#endif
