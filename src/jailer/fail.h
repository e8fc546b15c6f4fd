/* skiff-jailer's errors: every step returns 0 or a negative errno and records why, in one line,
 * with jail_fail(); main() prints that line as "skiff-jailer: <reason>" and exits (2 for a bad
 * argument, 1 for a step that failed). Single-threaded: one static buffer. */
#ifndef SKIFF_JAILER_FAIL_H
#define SKIFF_JAILER_FAIL_H

/* Records the reason (printf-style) and returns -err (err may be given either sign; 0 means
 * EINVAL). */
int jail_fail(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The last reason recorded ("" if none). */
const char *jail_last_error(void);

#endif
