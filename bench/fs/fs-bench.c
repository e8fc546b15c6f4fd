/* bench/fs/fs-bench.c: the guest side's measuring program of bench/fs, built static and put in
 * the guest's initramfs as /bin/fs-bench. Busybox alone would time a shell loop's forks rather
 * than the file system, so the loops are here, timed with CLOCK_MONOTONIC:
 *
 *   fs-bench meta DIR N        creates N files of 100 bytes in DIR (open O_CREAT, write, close),
 *                              stats each, unlinks each; one line per phase:
 *                              result=NAME ops=N ms=T ops_s=R   (NAME: create, stat, unlink)
 *   fs-bench write FILE MIB    writes MIB MiB in 1 MiB write()s (as dd bs=1M), then fsync:
 *                              result=seq-write mib=MIB ms=T mb_s=R
 *   fs-bench read FILE         drops the guest's page cache (/proc/sys/vm/drop_caches), then reads
 *                              FILE to its end in 1 MiB read()s:
 *                              result=seq-read mib=M ms=T mb_s=R
 *
 * MB/s are 10^6 bytes per second. A failure prints "error=NAME: reason" and exits 1.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define BLOCK (1024 * 1024)

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int fail(const char *name, const char *what, const char *path)
{
	printf("error=%s: %s %s: %s\n", name, what, path, strerror(errno));
	return 1;
}

static void ops_line(const char *name, long n, double ms)
{
	printf("result=%s ops=%ld ms=%.1f ops_s=%.1f\n", name, n, ms, ms > 0 ? n * 1e3 / ms : 0);
}

static int meta(const char *dir, long n)
{
	char path[4096], data[100];
	struct stat st;
	double t0;
	long i;
	int fd;

	memset(data, 'x', sizeof(data));
	t0 = now_ms();
	for (i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/f%ld", dir, i);
		fd = open(path, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644);
		if (fd < 0)
			return fail("create", "open", path);
		if (write(fd, data, sizeof(data)) != (ssize_t)sizeof(data)) {
			close(fd);
			return fail("create", "write", path);
		}
		if (close(fd) < 0)
			return fail("create", "close", path);
	}
	ops_line("create", n, now_ms() - t0);
	t0 = now_ms();
	for (i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/f%ld", dir, i);
		if (stat(path, &st) < 0)
			return fail("stat", "stat", path);
		if (st.st_size != sizeof(data)) {
			errno = EIO;
			return fail("stat", "size of", path);
		}
	}
	ops_line("stat", n, now_ms() - t0);
	t0 = now_ms();
	for (i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/f%ld", dir, i);
		if (unlink(path) < 0)
			return fail("unlink", "unlink", path);
	}
	ops_line("unlink", n, now_ms() - t0);
	return 0;
}

static void rate_line(const char *name, long long bytes, double ms)
{
	printf("result=%s mib=%lld ms=%.1f mb_s=%.2f\n", name, bytes / BLOCK, ms,
	       ms > 0 ? bytes / 1e3 / ms : 0);
}

static int seq_write(const char *file, long mib)
{
	char *buf = malloc(BLOCK);
	double t0;
	long i;
	int fd;

	if (!buf)
		return fail("seq-write", "malloc", "");
	memset(buf, 0x5a, BLOCK);
	t0 = now_ms();
	fd = open(file, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644);
	if (fd < 0)
		return fail("seq-write", "open", file);
	for (i = 0; i < mib; i++) {
		if (write(fd, buf, BLOCK) != BLOCK) {
			close(fd);
			return fail("seq-write", "write", file);
		}
	}
	if (fsync(fd) < 0 || close(fd) < 0)
		return fail("seq-write", "fsync/close", file);
	rate_line("seq-write", (long long)mib * BLOCK, now_ms() - t0);
	free(buf);
	return 0;
}

static int seq_read(const char *file)
{
	char *buf = malloc(BLOCK);
	long long total = 0;
	double t0;
	ssize_t n;
	int fd;

	if (!buf)
		return fail("seq-read", "malloc", "");
	sync();
	fd = open("/proc/sys/vm/drop_caches", O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, "3\n", 2) != 2)
		return fail("seq-read", "write 3 to", "/proc/sys/vm/drop_caches");
	close(fd);
	t0 = now_ms();
	fd = open(file, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fail("seq-read", "open", file);
	while ((n = read(fd, buf, BLOCK)) > 0)
		total += n;
	if (n < 0) {
		close(fd);
		return fail("seq-read", "read", file);
	}
	close(fd);
	rate_line("seq-read", total, now_ms() - t0);
	free(buf);
	return 0;
}

int main(int argc, char **argv)
{
	int rc = 2;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 4 && !strcmp(argv[1], "meta") && atol(argv[3]) > 0)
		rc = meta(argv[2], atol(argv[3]));
	else if (argc == 4 && !strcmp(argv[1], "write") && atol(argv[3]) > 0)
		rc = seq_write(argv[2], atol(argv[3]));
	else if (argc == 3 && !strcmp(argv[1], "read"))
		rc = seq_read(argv[2]);
	else
		fprintf(stderr, "usage: fs-bench meta DIR N | write FILE MIB | read FILE\n");
	return rc;
}
