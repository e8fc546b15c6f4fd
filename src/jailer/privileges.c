#include "jailer/privileges.h"

#include <dirent.h>
#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "jailer/fail.h"

int jail_close_inherited_fds(void)
{
	DIR *d;
	struct dirent *e;

#ifdef SYS_close_range
	if (syscall(SYS_close_range, 3U, ~0U, 0U) == 0)
		return 0;
#endif
	d = opendir("/proc/self/fd");
	if (!d)
		return jail_fail(errno, "/proc/self/fd: %s", strerror(errno));
	while ((e = readdir(d))) {
		int fd = atoi(e->d_name);

		if (fd > 2 && fd != dirfd(d))
			close(fd);
	}
	closedir(d);
	return 0;
}

int jail_drop_privileges(uid_t uid, gid_t gid)
{
	struct __user_cap_header_struct head = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];

	/* The bounding set first: dropping it needs CAP_SETPCAP, which goes with the uid. */
	for (int cap = 0; cap < 64; cap++)
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL)
			return jail_fail(errno, "dropping capability %d from the bounding set: %s",
					 cap, strerror(errno));
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL)
		return jail_fail(errno, "clearing the ambient capabilities: %s", strerror(errno));
	if (setgroups(0, NULL) != 0)
		return jail_fail(errno, "setgroups: %s", strerror(errno));
	if (setresgid(gid, gid, gid) != 0)
		return jail_fail(errno, "setresgid %u: %s", (unsigned)gid, strerror(errno));
	if (setresuid(uid, uid, uid) != 0)
		return jail_fail(errno, "setresuid %u: %s", (unsigned)uid, strerror(errno));
	/* A non-zero uid has lost its capabilities with setresuid; uid 0 keeps them unless told. */
	memset(data, 0, sizeof(data));
	if (syscall(SYS_capset, &head, data) != 0)
		return jail_fail(errno, "capset: %s", strerror(errno));
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		return jail_fail(errno, "PR_SET_NO_NEW_PRIVS: %s", strerror(errno));

	/* Trust, but check. */
	if (syscall(SYS_capget, &head, data) != 0)
		return jail_fail(errno, "capget: %s", strerror(errno));
	for (int i = 0; i < _LINUX_CAPABILITY_U32S_3; i++)
		if (data[i].effective || data[i].permitted || data[i].inheritable)
			return jail_fail(EPERM, "capabilities are left after dropping them");
	if (uid != 0 && setuid(0) == 0)
		return jail_fail(EPERM, "setuid(0) still works after dropping privileges");
	return 0;
}
