/* What the harnesses in tests/fuzz share: a cursor over a fuzzer's input, whose fixed-size
 * fields are taken from the front, little-endian, and read as zero once the input is used up
 * (every input is a valid program for a harness; what is left is the harness's free-form data:
 * guest memory, a file, a request); and guest RAM that ASan watches. */
#ifndef SKIFF_TESTS_FUZZ_INPUT_H
#define SKIFF_TESTS_FUZZ_INPUT_H

#include "base/guest_mem.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct fuzz_input {
	const uint8_t *data;
	size_t len;
};

static inline uint64_t fuzz_take(struct fuzz_input *in, unsigned bytes)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < bytes; i++) {
		if (in->len) {
			v |= (uint64_t)in->data[0] << (8 * i);
			in->data++;
			in->len--;
		}
	}
	return v;
}

static inline uint8_t fuzz_u8(struct fuzz_input *in)
{
	return (uint8_t)fuzz_take(in, 1);
}
static inline uint16_t fuzz_u16(struct fuzz_input *in)
{
	return (uint16_t)fuzz_take(in, 2);
}
static inline uint32_t fuzz_u32(struct fuzz_input *in)
{
	return (uint32_t)fuzz_take(in, 4);
}
static inline uint64_t fuzz_u64(struct fuzz_input *in)
{
	return fuzz_take(in, 8);
}

/* Up to `max` bytes of what is left; returns how many (the cursor moves past them). */
static inline size_t fuzz_bytes(struct fuzz_input *in, void *out, size_t max)
{
	size_t n = in->len < max ? in->len : max;

	memcpy(out, in->data, n);
	in->data += n;
	in->len -= n;
	return n;
}

/* Guest RAM for a harness: like guest_mem_map(), but each region is a zeroed heap block, so
 * that ASan reports any access past a region's end (mmap'ed RAM would hide it up to the page
 * end, or into the next mapping). Never freed: a harness keeps its RAM for the process. */
static inline void fuzz_ram_map(struct guest_mem *mem, const struct guest_region *layout, int nr)
{
	if (nr > GUEST_MEM_MAX_REGIONS)
		abort();
	memset(mem, 0, sizeof(*mem));
	for (int i = 0; i < nr; i++) {
		mem->regions[i] = layout[i];
		mem->regions[i].hva = calloc(1, layout[i].size);
		if (!mem->regions[i].hva)
			abort();
	}
	mem->nr_regions = nr;
}

#endif
