/* The split virtqueue's device side (src/virtio/queue.c) over guest memory the fuzzer writes:
 * descriptor tables, indirect tables, available-ring entries and indices, used_event, and the
 * device's own indices (as a restored device may start with any). Chains are taken until the
 * ring is empty or the driver broke a rule, their buffers read and written, and pushed back.
 *
 * Input: 16-byte header (see below), then guest RAM from address 0. RAM is two regions, so
 * chains and rings can end at a region's edge or fall into the hole between them. */
#include "fuzz/input.h"
#include "virtio/queue.h"
#include "virtio/virtio.h"

#include <stdlib.h>
#include <string.h>

#define RAM_LOW	    0x4000 /* [0, 16 KiB) */
#define RAM_HIGH    0x10000
#define RAM_HIGH_SZ 0x1000 /* [64 KiB, 68 KiB) */

static struct guest_mem mem;
static struct virtq_elem elem;
static uint8_t scratch[0x6000];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_input in = {data, size};
	struct virtq q = {.max_size = 256};
	uint8_t flags, ops;
	uint64_t features = 0;

	if (!mem.nr_regions) {
		struct guest_region layout[] = {{.gpa = 0, .size = RAM_LOW},
						{.gpa = RAM_HIGH, .size = RAM_HIGH_SZ}};

		fuzz_ram_map(&mem, layout, 2);
	}
	/* Header: size, flags, last_avail_idx, used_idx, ops, ring addresses (when flags bit 2). */
	q.size = fuzz_u16(&in) & 0x1ff;
	flags = fuzz_u8(&in);
	if (flags & 1)
		features |= 1ULL << VIRTIO_F_EVENT_IDX;
	if (flags & 2)
		features |= 1ULL << VIRTIO_F_INDIRECT_DESC;
	if (flags & 4) {
		q.desc_gpa = fuzz_u16(&in) * 2ULL;
		q.avail_gpa = fuzz_u16(&in) * 2ULL;
		q.used_gpa = fuzz_u16(&in) * 2ULL;
	} else {
		q.desc_gpa = 0;
		q.avail_gpa = 0x1000;
		q.used_gpa = 0x2000;
	}
	uint16_t last_avail = fuzz_u16(&in), used_idx = fuzz_u16(&in);
	ops = fuzz_u8(&in);

	memset(mem.regions[0].hva, 0, RAM_LOW);
	memset(mem.regions[1].hva, 0, RAM_HIGH_SZ);
	fuzz_bytes(&in, mem.regions[0].hva, RAM_LOW);
	fuzz_bytes(&in, mem.regions[1].hva, RAM_HIGH_SZ);

	q.ready = true;
	if (virtq_activate(&q, &mem, features))
		return 0;
	q.last_avail_idx = last_avail;
	q.used_idx = used_idx;
	virtq_set_notification(&q, !(ops & 1));
	for (int i = 0; i < 2 * VIRTQ_MAX_SIZE && virtq_has_avail(&q); i++) {
		size_t n;
		int ret = virtq_pop(&q, &elem);

		if (ret <= 0)
			break;
		if ((ops & 2) && i == 0) {
			/* Once: give the chain back and take it again (RX with no packet). */
			virtq_unpop(&q);
			continue;
		}
		n = virtq_elem_read(&elem, ops >> 4, scratch, sizeof(scratch));
		n = virtq_elem_write(&elem, ops >> 6, scratch, n);
		virtq_push(&q, elem.head, (ops & 8) ? elem.in_len : (uint32_t)n);
		virtq_should_notify(&q);
	}
	virtq_set_notification(&q, true);
	virtq_reset(&q);
	return 0;
}
