/* The jail's cgroup (v2): <cgroup2 mount>/<parent>/<id>, created as needed. The controllers the
 * --cgroup files belong to ("memory" for memory.max) are enabled in cgroup.subtree_control from
 * the mount's root down to <parent>, each FILE=VALUE is written, then the calling process moves
 * in (its children follow). Reads /proc/mounts for the cgroup2 mount: call before entering the
 * jail. 0 or -errno with the reason recorded (jail_fail). */
#ifndef SKIFF_JAILER_CGROUP_H
#define SKIFF_JAILER_CGROUP_H

#include "jailer/args.h"

int jail_cgroup_join(const struct jail_args *a);

#endif
