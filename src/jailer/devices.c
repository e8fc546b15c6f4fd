#include "jailer/devices.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "jailer/fail.h"

static struct jail_device {
	const char *path;
	unsigned int major,
	    minor; /* Documentation/admin-guide/devices.txt; replaced by the host's */
	mode_t mode;
} devices[] = {
    {"/dev/kvm", 10, 232, 0600},
    {"/dev/net/tun", 10, 200, 0600},
    {"/dev/urandom", 1, 9, 0666},
};

#define N_DEVICES (sizeof(devices) / sizeof(devices[0]))

int jail_devices_probe(void)
{
	for (size_t i = 0; i < N_DEVICES; i++) {
		struct stat st;

		if (stat(devices[i].path, &st) != 0) {
			if (errno == ENOENT)
				continue;
			return jail_fail(errno, "%s: %s", devices[i].path, strerror(errno));
		}
		if (!S_ISCHR(st.st_mode))
			return jail_fail(EINVAL, "%s on the host is not a character device",
					 devices[i].path);
		devices[i].major = major(st.st_rdev);
		devices[i].minor = minor(st.st_rdev);
	}
	return 0;
}

static int make_dir(const char *path)
{
	struct stat st;

	if (mkdir(path, 0755) == 0)
		return 0;
	if (errno != EEXIST)
		return jail_fail(errno, "mkdir %s in the jail: %s", path, strerror(errno));
	if (lstat(path, &st) != 0 || !S_ISDIR(st.st_mode))
		return jail_fail(ENOTDIR, "%s in the jail is not a directory", path);
	return 0;
}

int jail_devices_create(uid_t uid, gid_t gid)
{
	int ret;

	ret = make_dir("/dev");
	if (!ret)
		ret = make_dir("/dev/net");
	if (ret)
		return ret;
	for (size_t i = 0; i < N_DEVICES; i++) {
		const struct jail_device *d = &devices[i];

		if (unlink(d->path) != 0 && errno != ENOENT)
			return jail_fail(errno, "%s in the jail: %s", d->path, strerror(errno));
		if (mknod(d->path, S_IFCHR | d->mode, makedev(d->major, d->minor)) != 0)
			return jail_fail(errno, "mknod %s in the jail: %s", d->path,
					 strerror(errno));
		/* mknod's mode went through the umask. */
		if (chmod(d->path, d->mode) != 0 || chown(d->path, uid, gid) != 0)
			return jail_fail(errno, "%s in the jail: %s", d->path, strerror(errno));
	}
	return 0;
}
