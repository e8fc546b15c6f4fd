/* The arm64 kernel loader (src/arch/arm64/image.c: portable C, compiled into this harness on any
 * host): the Image header checks, gzip inflation of a compressed Image (zlib, bounded output),
 * placement at the 2 MiB-aligned start of RAM + text_offset, and an initrd high in RAM below the
 * device tree's 2 MiB, into 64 MiB of guest RAM at the arm64 RAM base. Input: u8 initrd pages
 * (0: none), then the kernel file as read from disk (plain or gzip). A kernel the loader
 * accepts must have been given a layout the guest can boot with: the kernel page-aligned in RAM
 * and below the device tree's 2 MiB at the top of RAM, the initrd between the two. */
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
	if (arm64_load_image(&mem, ARM64_RAM_BASE, in.data, in.len, initrd_len ? initrd : NULL,
			     initrd_len, &b))
		return 0;
	if (b.kernel_start < ARM64_RAM_BASE || b.kernel_start % 4096 || b.entry != b.kernel_start ||
	    b.kernel_end < b.kernel_start || b.kernel_end > b.fdt_addr ||
	    b.fdt_addr + (2 << 20) != ARM64_RAM_BASE + RAM_SIZE)
		__builtin_trap(); /* an accepted kernel placed where it cannot run */
	if (initrd_len && (b.initrd_start < b.kernel_end || b.initrd_end > b.fdt_addr ||
			   b.initrd_end - b.initrd_start != initrd_len))
		__builtin_trap(); /* the initrd overlaps the kernel or the device tree */
	return 0;
}
