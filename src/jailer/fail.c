#include "jailer/fail.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

static char last_error[512];

int jail_fail(int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(last_error, sizeof(last_error), fmt, ap);
	va_end(ap);
	if (err == 0)
		err = EINVAL;
	return err < 0 ? err : -err;
}

const char *jail_last_error(void)
{
	return last_error;
}
