/* A line built and written inside a signal handler, where stdio and malloc may not be used: the
 * reports of a seccomp violation (base/seccomp.c) and of a fatal fault (base/crash.c). Appending
 * past the end cuts the line; nothing here allocates, locks or fails. */
#ifndef SKIFF_BASE_SIGSAFE_H
#define SKIFF_BASE_SIGSAFE_H

#include <stddef.h>
#include <stdint.h>

struct sigsafe_line {
	char buf[1024];
	size_t n;
};

void sigsafe_put(struct sigsafe_line *l, const char *s);
void sigsafe_put_dec(struct sigsafe_line *l, long v);
void sigsafe_put_hex(struct sigsafe_line *l, uint64_t v); /* "0x1f" */

/* The terminal back to cooked mode (base/terminal.h), then the line (which should end in "\n")
 * to the log file if there is one, and to stderr. */
void sigsafe_emit(const struct sigsafe_line *l);

#endif
