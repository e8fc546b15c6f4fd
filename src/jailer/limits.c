#include "jailer/limits.h"

#include <errno.h>
#include <string.h>

#include "jailer/fail.h"

static int set_limit(int resource, rlim_t value, const char *name)
{
	struct rlimit rl = {.rlim_cur = value, .rlim_max = value};

	if (setrlimit(resource, &rl) != 0)
		return jail_fail(errno, "--resource-limit %s=%llu: %s", name,
				 (unsigned long long)value, strerror(errno));
	return 0;
}

int jail_limits_apply(const struct jail_args *a)
{
	int ret = 0;

	if (a->fsize_set)
		ret = set_limit(RLIMIT_FSIZE, a->fsize, "fsize");
	if (!ret)
		ret = set_limit(RLIMIT_NOFILE, a->nofile_set ? a->nofile : JAIL_DEFAULT_NOFILE,
				"no-file");
	return ret;
}
