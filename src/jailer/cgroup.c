#include "jailer/cgroup.h"

#include <errno.h>
#include <fcntl.h>
#include <mntent.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jailer/fail.h"

static int find_cgroup2(char *out, size_t len)
{
	FILE *f = setmntent("/proc/mounts", "re");
	struct mntent *m;
	int ret = -ENOENT;

	if (!f)
		return jail_fail(errno, "/proc/mounts: %s", strerror(errno));
	while ((m = getmntent(f)))
		if (strcmp(m->mnt_type, "cgroup2") == 0) {
			snprintf(out, len, "%s", m->mnt_dir);
			ret = 0;
			break;
		}
	endmntent(f);
	if (ret)
		return jail_fail(ENOENT,
				 "no cgroup v2 file system is mounted (e.g. mount -t cgroup2 "
				 "none /sys/fs/cgroup)");
	return 0;
}

static int write_file(const char *path, const char *value)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
	size_t n = strlen(value);
	ssize_t w;

	if (fd < 0)
		return jail_fail(errno, "%s: %s", path, strerror(errno));
	w = write(fd, value, n);
	if (w != (ssize_t)n) {
		int err = w < 0 ? errno : EIO;

		close(fd);
		return jail_fail(err, "writing '%s' to %s: %s", value, path, strerror(err));
	}
	close(fd);
	return 0;
}

/* "+memory" into dir/cgroup.subtree_control for each distinct controller of the settings. */
static int enable_controllers(const struct jail_args *a, const char *dir)
{
	char path[4096 + 32], ctl[64];
	int ret;

	snprintf(path, sizeof(path), "%s/cgroup.subtree_control", dir);
	for (int i = 0; i < a->n_cgroups; i++) {
		const char *key = a->cgroups[i].key;
		size_t n = strcspn(key, ".");
		bool dup = false;

		/* cgroup.* files are the core's: every cgroup has them. */
		if (n + 2 > sizeof(ctl) || strncmp(key, "cgroup.", 7) == 0)
			continue;
		for (int j = 0; j < i; j++)
			if (strncmp(a->cgroups[j].key, key, n + 1) == 0)
				dup = true;
		if (dup)
			continue;
		snprintf(ctl, sizeof(ctl), "+%.*s", (int)n, key);
		ret = write_file(path, ctl);
		if (ret)
			return ret;
	}
	return 0;
}

int jail_cgroup_join(const struct jail_args *a)
{
	char dir[4096], path[4096 + 128], pid[32];
	const char *p = a->parent_cgroup;
	size_t len;
	int ret;

	ret = find_cgroup2(dir, sizeof(dir));
	if (ret)
		return ret;
	/* Down from the root: enable, step into the next component (created if need be). */
	for (;;) {
		size_t n = strcspn(p, "/");

		ret = enable_controllers(a, dir);
		if (ret)
			return ret;
		if (*p == '\0')
			break;
		len = strlen(dir);
		if (len + n + 2 > sizeof(dir))
			return jail_fail(ENAMETOOLONG, "--parent-cgroup: too long");
		snprintf(dir + len, sizeof(dir) - len, "/%.*s", (int)n, p);
		if (mkdir(dir, 0755) != 0 && errno != EEXIST)
			return jail_fail(errno, "mkdir %s: %s", dir, strerror(errno));
		p += n;
		if (*p == '/')
			p++;
	}
	len = strlen(dir);
	if (len + strlen(a->id) + 2 > sizeof(dir))
		return jail_fail(ENAMETOOLONG, "the cgroup's path is too long");
	snprintf(dir + len, sizeof(dir) - len, "/%s", a->id);
	if (mkdir(dir, 0755) != 0 && errno != EEXIST)
		return jail_fail(errno, "mkdir %s: %s", dir, strerror(errno));
	for (int i = 0; i < a->n_cgroups; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, a->cgroups[i].key);
		ret = write_file(path, a->cgroups[i].value);
		if (ret)
			return ret;
	}
	snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	return write_file(path, pid);
}
