/* virtio-console's request handling (src/virtio/console.c) over fuzzed guest memory and
 * descriptor chains, driven as tests/fuzz/virtio_dev.h describes. Two devices: one writes the
 * guest's output to /dev/null, the other to a pipe of one page that nobody reads until the input
 * is done (the device must wait for it to drain, not spin or drop); the input's first byte
 * picks. Then up to 1 KiB of host input (u16 length, then the bytes), handed to the device with
 * virtio_console_receive() in pieces, one before each kick, as the run loop's console pump
 * would. */
#include "fuzz/virtio_dev.h"
#include "virtio/console.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#define MAX_INPUT 1024

static struct fuzz_dev devs[2];
static int pipe_fds[2] = {-1, -1};
static uint8_t host_input[MAX_INPUT];
static size_t input_len, input_done;

static void before_kick(struct fuzz_dev *f, uint16_t q)
{
	size_t piece = input_len - input_done;

	if (piece > 100)
		piece = 100;
	input_done += virtio_console_receive(f->dev, host_input + input_done, piece);
}

static void create(struct fuzz_dev *f, int out, const char *name)
{
	struct virtio_device *dev;

	if (out < 0 || virtio_console_create(out, &dev))
		abort();
	fuzz_dev_init(f, dev, name);
	f->before_kick = before_kick;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_input in = {data, size};
	struct fuzz_dev *f;
	char sink[4096];

	if (pipe_fds[0] < 0) {
		fuzz_quiet_log();
		if (pipe2(pipe_fds, O_NONBLOCK | O_CLOEXEC) || fcntl(pipe_fds[1], F_SETPIPE_SZ, 4096) < 0)
			abort();
		create(&devs[0], open("/dev/null", O_WRONLY | O_CLOEXEC), "fuzz-console");
		create(&devs[1], pipe_fds[1], "fuzz-console-pipe");
	}
	f = &devs[fuzz_u8(&in) & 1];
	input_len = fuzz_bytes(&in, host_input, fuzz_u16(&in) % (MAX_INPUT + 1));
	input_done = 0;
	fuzz_dev_run(f, &in);
	while (read(pipe_fds[0], sink, sizeof(sink)) > 0)
		;
	return 0;
}
