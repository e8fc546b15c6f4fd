/* virtio-balloon (src/virtio/balloon.c): the page frame numbers of inflate and deflate requests,
 * statistics buffers and free page reports over fuzzed guest memory and descriptor chains,
 * driven as tests/fuzz/virtio_dev.h describes. The device offers everything (statistics every
 * second, deflate on OOM, free page reporting); the input's feature mask picks what is
 * negotiated, and with it which queue is which (inflate 0, deflate 1, then statistics and
 * reporting when negotiated). Pages given back are madvise()d in the harness's RAM, which the
 * next input fills again. */
#include "fuzz/virtio_dev.h"
#include "virtio/balloon.h"

#include <stdlib.h>

static struct fuzz_dev fd;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_input in = {data, size};

	if (!fd.dev) {
		struct virtio_balloon_params p = {.amount_mib = 1,
						  .deflate_on_oom = true,
						  .stats_polling_interval_s = 1,
						  .free_page_reporting = true};
		struct virtio_device *dev;

		fuzz_quiet_log();
		if (virtio_balloon_create(&p, &dev))
			abort();
		fuzz_dev_init(&fd, dev, "fuzz-balloon");
	}
	fuzz_dev_run(&fd, &in);
	return 0;
}
