/* virtio-rng's request handling (src/virtio/rng.c) over fuzzed guest memory and descriptor
 * chains, driven as tests/fuzz/virtio_dev.h describes. */
#include "fuzz/virtio_dev.h"
#include "virtio/rng.h"

#include <stdlib.h>

static struct fuzz_dev fd;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_input in = {data, size};

	if (!fd.dev) {
		struct virtio_device *dev;

		fuzz_quiet_log();
		if (virtio_rng_create(NULL, &dev))
			abort();
		fuzz_dev_init(&fd, dev, "fuzz-rng");
	}
	fuzz_dev_run(&fd, &in);
	return 0;
}
