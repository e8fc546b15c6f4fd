/* The arm64 kernel loader (src/arch/arm64/image.c: portable C, compiled into this harness on any
 * host): the Image header checks, gzip inflation of a compressed Image (zlib, bounded output),
 * placement at the 2 MiB-aligned start of RAM + text_offset, and an initrd high in RAM below the
 * device tree's 2 MiB, into 64 MiB of guest RAM at the arm64 RAM base. Input: u8 initrd pages
 * (0: none), then the kernel file as read from disk (plain or gzip). */
#include "fuzz/input.h"
#include "arch/arm64/image.h"
#include "arch/arm64/layout.h"
#include "base/log.h"

#include <stdlib.h>

#define RAM_SIZE (64ULL << 20)

static struct guest_mem mem;
static uint8_t initrd[255 << 12];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_input in = {data, size};
	struct arm64_boot_layout b;
	size_t initrd_len;

	if (!mem.nr_regions) {
		struct guest_region r = {.gpa = ARM64_RAM_BASE, .size = RAM_SIZE};

		log_set_level(LOG_ERROR);
		if (log_set_path("/dev/null"))
			abort();
		fuzz_ram_map(&mem, &r, 1);
	}
	initrd_len = (size_t)fuzz_u8(&in) << 12;
	arm64_load_image(&mem, ARM64_RAM_BASE, in.data, in.len, initrd_len ? initrd : NULL,
			 initrd_len, &b);
	return 0;
}
