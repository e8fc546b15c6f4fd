#include "jailer/tree.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jailer/fail.h"

/* mkdir -p for the chroot base (the administrator's path: symlinks in it are followed). */
static int make_base(const char *base)
{
	char path[4096];
	size_t n = strlen(base);

	if (n >= sizeof(path))
		return jail_fail(ENAMETOOLONG, "--chroot-base-dir: too long");
	memcpy(path, base, n + 1);
	for (char *p = path + 1;; p++) {
		if (*p == '/' || *p == '\0') {
			char c = *p;

			*p = '\0';
			if (path[0] && mkdir(path, 0755) != 0 && errno != EEXIST)
				return jail_fail(errno, "mkdir %s: %s", path, strerror(errno));
			*p = c;
			if (c == '\0')
				break;
		}
	}
	return 0;
}

/* Opens (creating if need be) the directory name under dirfd; refuses a symlink or a file. */
static int open_subdir(int dirfd, const char *name, const char *shown)
{
	int fd;

	if (mkdirat(dirfd, name, 0755) != 0 && errno != EEXIST)
		return jail_fail(errno, "mkdir %s: %s", shown, strerror(errno));
	fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return jail_fail(errno, "%s: %s", shown,
				 errno == ELOOP || errno == ENOTDIR
				     ? "not a directory (a symlink or "
				       "a file is refused)"
				     : strerror(errno));
	return fd;
}

static int copy_program(const char *src, int rootfd, const char *name, const char *shown)
{
	char buf[65536];
	struct stat st;
	int in, out, ret = 0;
	ssize_t n;

	in = open(src, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return jail_fail(errno, "%s: %s", src, strerror(errno));
	if (fstat(in, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(in);
		return jail_fail(EINVAL, "%s: not a regular file", src);
	}
	out = openat(rootfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0700);
	if (out < 0) {
		ret = jail_fail(errno, "%s: %s", shown, strerror(errno));
		close(in);
		return ret;
	}
	while ((n = read(in, buf, sizeof(buf))) > 0) {
		for (ssize_t done = 0; done < n;) {
			ssize_t w = write(out, buf + done, (size_t)(n - done));

			if (w < 0) {
				if (errno == EINTR)
					continue;
				ret = jail_fail(errno, "copying %s to %s: %s", src, shown,
						strerror(errno));
				goto out;
			}
			done += w;
		}
	}
	if (n < 0) {
		ret = jail_fail(errno, "reading %s: %s", src, strerror(errno));
		goto out;
	}
	if (fchmod(out, st.st_mode & 0777) != 0)
		ret = jail_fail(errno, "chmod %s: %s", shown, strerror(errno));
out:
	close(in);
	if (close(out) != 0 && !ret)
		ret = jail_fail(errno, "%s: %s", shown, strerror(errno));
	return ret;
}

int jail_tree_build(const struct jail_args *a, char *root, size_t len)
{
	const char *names[] = {a->exec_name, a->id, "root"};
	char shown[4096 + 128];
	int fd, next, ret;

	if ((size_t)snprintf(root, len, "%s/%s/%s/root", a->chroot_base, a->exec_name, a->id) >=
	    len)
		return jail_fail(ENAMETOOLONG, "the jail's path is too long");
	ret = make_base(a->chroot_base);
	if (ret)
		return ret;
	fd = open(a->chroot_base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return jail_fail(errno, "--chroot-base-dir %s: %s", a->chroot_base,
				 strerror(errno));
	snprintf(shown, sizeof(shown), "%s", a->chroot_base);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		size_t n = strlen(shown);

		snprintf(shown + n, sizeof(shown) - n, "/%s", names[i]);
		next = open_subdir(fd, names[i], shown);
		close(fd);
		if (next < 0)
			return next;
		fd = next;
	}

	/* The program: a fresh link (or copy) each time, never whatever stands there. */
	snprintf(shown, sizeof(shown), "%s/%s", root, a->exec_name);
	if (unlinkat(fd, a->exec_name, 0) != 0 && errno != ENOENT) {
		ret = jail_fail(errno, "%s: %s", shown, strerror(errno));
		goto out;
	}
	if (linkat(AT_FDCWD, a->exec_file, fd, a->exec_name, 0) != 0) {
		/* Another file system (EXDEV), or links refused: copy. */
		ret = copy_program(a->exec_file, fd, a->exec_name, shown);
		if (ret)
			goto out;
	}
	if (fchown(fd, a->uid, a->gid) != 0)
		ret = jail_fail(errno, "chown %s: %s", root, strerror(errno));
out:
	close(fd);
	return ret;
}
