#include "base/input_file.h"
#include "base/log.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int input_file_open(const char *what, const char *path, int *fd, uint64_t *size)
{
	struct stat st;
	int err;

	*fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (*fd < 0 || fstat(*fd, &st) < 0) {
		err = -errno;
		log_error("%s %s: %s", what, path, strerror(errno));
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		log_error("%s %s: not a regular file", what, path);
		err = -EINVAL;
		goto fail;
	}
	*size = (uint64_t)st.st_size;
	return 0;
fail:
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
	return err;
}

int input_file_read(int fd, const char *what, const char *path, uint64_t off, void *buf,
		    uint64_t len)
{
	uint8_t *p = buf;

	while (len) {
		/* pread moves at most about 2 GiB at a time on Linux anyway. */
		size_t chunk = len > (1u << 30) ? (1u << 30) : (size_t)len;
		ssize_t n = pread(fd, p, chunk, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int err = -errno;

			log_error("%s %s: read at offset %llu: %s", what, path,
				  (unsigned long long)off, strerror(errno));
			return err;
		}
		if (n == 0) {
			log_error("%s %s: the file shrank while it was read", what, path);
			return -EIO;
		}
		p += n;
		off += (uint64_t)n;
		len -= (uint64_t)n;
	}
	return 0;
}
