#include "base/sigsafe.h"
#include "base/log.h"
#include "base/terminal.h"

#include <unistd.h>

void sigsafe_put(struct sigsafe_line *l, const char *s)
{
	while (*s && l->n < sizeof(l->buf) - 1)
		l->buf[l->n++] = *s++;
}

static void put_digits(struct sigsafe_line *l, uint64_t v, unsigned base)
{
	char digits[24];
	int i = 0;

	do {
		digits[i++] = "0123456789abcdef"[v % base];
		v /= base;
	} while (v && i < (int)sizeof(digits));
	while (i > 0 && l->n < sizeof(l->buf) - 1)
		l->buf[l->n++] = digits[--i];
}

void sigsafe_put_dec(struct sigsafe_line *l, long v)
{
	if (v < 0) {
		sigsafe_put(l, "-");
		put_digits(l, -(uint64_t)v, 10);
	} else {
		put_digits(l, (uint64_t)v, 10);
	}
}

void sigsafe_put_hex(struct sigsafe_line *l, uint64_t v)
{
	sigsafe_put(l, "0x");
	put_digits(l, v, 16);
}

void sigsafe_emit(const struct sigsafe_line *l)
{
	int log = log_fd();
	ssize_t ignored;

	terminal_restore();
	/* Nowhere to report a failed write to: each goes as far as it can. */
	if (log >= 0)
		ignored = write(log, l->buf, l->n);
	ignored = write(STDERR_FILENO, l->buf, l->n);
	(void)ignored;
}
