/* virtio-console's request handling (src/virtio/console.c) over fuzzed guest memory and
 * descriptor chains, driven as tests/fuzz/virtio_dev.h describes. Guest output goes to
 * /dev/null. The input starts with up to 1 KiB of host input (u16 length, then the bytes),
 * handed to the device with virtio_console_receive() in pieces, one before each kick, as the
 * run loop's console pump would. */
#include "fuzz/virtio_dev.h"
#include "virtio/console.h"

#include <fcntl.h>
#include <stdlib.h>

#define MAX_INPUT 1024

static struct fuzz_dev fd;
static uint8_t host_input[MAX_INPUT];
static size_t input_len, input_done;

static void before_kick(struct fuzz_dev *f, uint16_t q)
{
	size_t piece = input_len - input_done;

	if (piece > 100)
		piece = 100;
	input_done += virtio_console_receive(f->dev, host_input + input_done, piece);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_input in = {data, size};

	if (!fd.dev) {
		struct virtio_device *dev;
		int out = open("/dev/null", O_WRONLY | O_CLOEXEC);

		fuzz_quiet_log();
		if (out < 0 || virtio_console_create(out, &dev))
			abort();
		fuzz_dev_init(&fd, dev, "fuzz-console");
		fd.before_kick = before_kick;
	}
	input_len = fuzz_bytes(&in, host_input, fuzz_u16(&in) % (MAX_INPUT + 1));
	input_done = 0;
	fuzz_dev_run(&fd, &in);
	return 0;
}
