#include "jailer/namespaces.h"

#include <errno.h>
#include <sched.h>
#include <string.h>
#include <linux/magic.h>
#include <stdbool.h>
#include <sys/mount.h>
#include <sys/statfs.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "jailer/fail.h"

#define OLD_ROOT "old_root"

/* The initial ramfs (rootfs) is the one mount pivot_root cannot put aside (EINVAL): a system
 * running from its initramfs, as the nested test harness's L1 does. */
static bool root_is_initramfs(void)
{
	struct statfs fs;

	return statfs("/", &fs) == 0 && (fs.f_type == RAMFS_MAGIC || fs.f_type == TMPFS_MAGIC);
}

/* What switch_root and runc's no-pivot mode do there: move the jail's mount over / and chroot
 * into it. The host's other mounts stay in this namespace, covered by the jail and reachable by
 * no path; leaving the chroot would need CAP_SYS_CHROOT, which the program will not have. */
static int move_over_initramfs(const char *root)
{
	if (rmdir(OLD_ROOT) != 0)
		return jail_fail(errno, "rmdir %s/%s: %s", root, OLD_ROOT, strerror(errno));
	if (mount(".", "/", NULL, MS_MOVE, NULL) != 0)
		return jail_fail(errno, "moving %s over the initramfs root: %s", root,
				 strerror(errno));
	if (chroot(".") != 0 || chdir("/") != 0)
		return jail_fail(errno, "chroot %s: %s", root, strerror(errno));
	return 0;
}

int jail_enter_mount_ns(const char *root)
{
	if (unshare(CLONE_NEWNS) != 0)
		return jail_fail(errno, "unshare(CLONE_NEWNS): %s%s", strerror(errno),
				 errno == EPERM ? " (skiff-jailer must run as root)" : "");
	/* Nothing done here may propagate back to the host's mounts. */
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
		return jail_fail(errno, "making / private: %s", strerror(errno));
	/* pivot_root wants the new root to be a mount point. */
	if (mount(root, root, NULL, MS_BIND, NULL) != 0)
		return jail_fail(errno, "bind-mounting %s: %s", root, strerror(errno));
	if (chdir(root) != 0)
		return jail_fail(errno, "chdir %s: %s", root, strerror(errno));
	if (mkdir(OLD_ROOT, 0700) != 0 && errno != EEXIST)
		return jail_fail(errno, "mkdir %s/%s: %s", root, OLD_ROOT, strerror(errno));
	if (syscall(SYS_pivot_root, ".", OLD_ROOT) != 0) {
		if (errno == EINVAL && root_is_initramfs())
			return move_over_initramfs(root);
		return jail_fail(errno, "pivot_root into %s: %s", root, strerror(errno));
	}
	if (chdir("/") != 0)
		return jail_fail(errno, "chdir / in the jail: %s", strerror(errno));
	if (umount2("/" OLD_ROOT, MNT_DETACH) != 0)
		return jail_fail(errno, "unmounting the host's root: %s", strerror(errno));
	if (rmdir("/" OLD_ROOT) != 0)
		return jail_fail(errno, "rmdir /%s in the jail: %s", OLD_ROOT, strerror(errno));
	if (chroot(".") != 0)
		return jail_fail(errno, "chroot: %s", strerror(errno));
	return 0;
}

int jail_join_netns(int fd, const char *path)
{
	if (setns(fd, CLONE_NEWNET) != 0)
		return jail_fail(errno, "--netns %s: %s", path,
				 errno == EINVAL ? "not a network namespace" : strerror(errno));
	return 0;
}
