/* The virtio-mmio transport (src/virtio/mmio.c) and the virtio core behind it (status state
 * machine, feature negotiation, queue configuration, config space, notifications, interrupt
 * status) as a guest reaches them: register reads and writes of any width and offset, with a
 * virtio-rng device whose queue the guest can set up in 16 KiB of RAM and kick (kicks reach the
 * device's worker thread through the queue's eventfd, as without KVM's ioeventfd). Each input
 * gets a fresh bus, transport and device.
 *
 * Input: u8 number of accesses, then 8 bytes each (u8 write, u8 len code: 1, 2, 4 or 8 bytes,
 * u16 offset from the transport's base, u32 value), then guest RAM from address 0. */
#include "fuzz/input.h"
#include "base/log.h"
#include "virtio/mmio.h"
#include "virtio/rng.h"

#include <stdlib.h>

#define BASE	 0xd0000000ULL
#define RAM_SIZE 0x4000

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct guest_mem mem;
	struct fuzz_input in = {data, size}, prog;
	struct virtio_mmio_params p = {.vm_fd = -1, .mem = &mem, .base = BASE, .gsi = 5};
	struct virtio_device *dev;
	struct virtio_mmio *t;
	struct bus mmio;
	size_t n;

	if (!mem.nr_regions) {
		struct guest_region r = {.gpa = 0, .size = RAM_SIZE};

		log_set_level(LOG_ERROR);
		if (log_set_path("/dev/null"))
			abort();
		fuzz_ram_map(&mem, &r, 1);
	}
	n = fuzz_u8(&in);
	prog = (struct fuzz_input){in.data, in.len < 8 * n ? in.len : 8 * n};
	in.data += prog.len;
	in.len -= prog.len;
	memset(mem.regions[0].hva, 0, RAM_SIZE);
	fuzz_bytes(&in, mem.regions[0].hva, RAM_SIZE);

	bus_init(&mmio, "mmio");
	p.bus = &mmio;
	if (virtio_rng_create(NULL, &dev))
		abort();
	t = virtio_mmio_create(&p, dev);
	if (!t)
		abort();
	while (prog.len) {
		uint8_t write = fuzz_u8(&prog) & 1, len = (uint8_t)(1u << (fuzz_u8(&prog) & 3));
		uint16_t off = fuzz_u16(&prog);
		uint64_t value = fuzz_u32(&prog);

		bus_access(&mmio, BASE + off, &value, len, write);
	}
	virtio_mmio_destroy(t);
	bus_destroy(&mmio);
	return 0;
}
