/* Resource limits (--resource-limit): RLIMIT_FSIZE and RLIMIT_NOFILE, soft and hard alike, for
 * the jailer and what it execs. Without --resource-limit no-file=N, no-file is 2048 (as
 * Firecracker's jailer). 0 or -errno with the reason recorded (jail_fail). */
#ifndef SKIFF_JAILER_LIMITS_H
#define SKIFF_JAILER_LIMITS_H

#include "jailer/args.h"

#define JAIL_DEFAULT_NOFILE 2048

int jail_limits_apply(const struct jail_args *a);

#endif
