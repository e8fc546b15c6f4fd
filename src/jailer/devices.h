/* The device nodes a jailed skiff needs: /dev/kvm, /dev/net/tun and /dev/urandom, created inside
 * the jail with the host's major:minor (read before entering the jail; the kernel's fixed
 * numbers when the host has no such node, e.g. tun not loaded yet), mode 0600 (urandom 0666),
 * owned by uid:gid. Created after pivot_root, so paths resolve inside the jail only; a node
 * already there is replaced. */
#ifndef SKIFF_JAILER_DEVICES_H
#define SKIFF_JAILER_DEVICES_H

#include <sys/types.h>

/* Reads the host's nodes. 0 or -errno (a host path that exists but is not a character device). */
int jail_devices_probe(void);

/* Creates the nodes under the current root. 0 or -errno with the reason recorded. */
int jail_devices_create(uid_t uid, gid_t gid);

#endif
