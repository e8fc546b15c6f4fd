/* virtio-blk's request handling (src/virtio/blk.c, blk_io.c) over fuzzed guest memory and
 * descriptor chains, on 64 KiB images in temporary files (tmpfs when there is one, so flushes are
 * cheap), driven as tests/fuzz/virtio_dev.h describes. Two devices, each on its image: one
 * on io_uring (completions on the worker, drained by reset), one on the synchronous backend
 * (SKIFF_BLK_NO_URING); the input's first byte picks. The image is cleared after each input,
 * so what one input wrote does not change what the next one reads, and it must still be 64 KiB
 * then: no request may write past the disk's capacity. */
#include "fuzz/virtio_dev.h"
#include "virtio/blk.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <unistd.h>

#define IMAGE_SIZE (64 * 1024)

static struct fuzz_dev devs[2];
static int image_fds[2] = {-1, -1};

/* A new empty image: its fd (kept to clear it) and its path in `path` (64 bytes). */
static int new_image(char *path)
{
	int fd;

	snprintf(path, 64, "/dev/shm/skiff-fuzz-blk-XXXXXX");
	fd = mkstemp(path);
	if (fd < 0) {
		snprintf(path, 64, "/tmp/skiff-fuzz-blk-XXXXXX");
		fd = mkstemp(path);
	}
	if (fd < 0 || ftruncate(fd, IMAGE_SIZE))
		abort();
	return fd;
}

/* Each device on its own image: two writable opens of one image are refused (its lock). */
static void create(int i, bool uring, const char *name)
{
	struct disk_config cfg = {0};
	struct virtio_device *dev;
	char path[64];

	image_fds[i] = new_image(path);
	snprintf(cfg.path, sizeof(cfg.path), "%s", path);
	snprintf(cfg.id, sizeof(cfg.id), "%s", name);
	if (uring)
		unsetenv("SKIFF_BLK_NO_URING");
	else
		setenv("SKIFF_BLK_NO_URING", "1", 1);
	if (virtio_blk_create(&cfg, &dev))
		abort();
	unlink(path);
	fuzz_dev_init(&devs[i], dev, name);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_input in = {data, size};
	struct stat st;
	int i;

	if (image_fds[0] < 0) {
		fuzz_quiet_log();
		create(0, true, "fuzz-blk-uring");
		create(1, false, "fuzz-blk-sync");
	}
	i = fuzz_u8(&in) & 1;
	fuzz_dev_run(&devs[i], &in);
	if (fstat(image_fds[i], &st) || st.st_size != IMAGE_SIZE)
		__builtin_trap(); /* a request wrote past the end of the disk */
	if (ftruncate(image_fds[i], 0) || ftruncate(image_fds[i], IMAGE_SIZE))
		abort();
	return 0;
}
