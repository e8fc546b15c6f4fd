/* What the jailed program inherits from the jailer: no descriptor but 0, 1 and 2, no
 * environment, and no privilege: the given uid and gid (saved and effective alike), no
 * supplementary groups, every capability set empty (the bounding set too, so not even a uid-0
 * jail keeps any), and PR_SET_NO_NEW_PRIVS (no set-id program or file capability can give any
 * back). Each returns 0 or -errno with the reason recorded (jail_fail). */
#ifndef SKIFF_JAILER_PRIVILEGES_H
#define SKIFF_JAILER_PRIVILEGES_H

#include <sys/types.h>

/* Closes every descriptor above 2 (close_range, or each one /proc/self/fd lists). */
int jail_close_inherited_fds(void);

/* Drops to uid:gid with no capabilities; checks that they are gone. */
int jail_drop_privileges(uid_t uid, gid_t gid);

#endif
