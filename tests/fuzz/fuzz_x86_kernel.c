/* The x86 kernel loaders (src/arch/x86/boot*.c) on a kernel file the fuzzer writes: the format
 * sniffing of x86_load_kernel, then the bzImage loader (setup header, setup sectors, init_size,
 * the zero page, the command line) or the ELF loader (program headers, the PVH note, the
 * Linux 64-bit entry), with an initrd of a chosen size placed high in RAM, into 64 MiB of
 * guest RAM. Input: u8 protocol (auto, linux64, pvh), u8 initrd pages (0: none), u8 command
 * line length, that many bytes of command line, then the kernel file. A kernel the loaders
 * accept must be bootable as they say: its entry point, its boot structure (boot_params or
 * hvm_start_info) and its stack in guest RAM. */
#include "fuzz/input.h"
#include "arch/x86/boot.h"
#include "base/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define RAM_SIZE (64ULL << 20)

static struct guest_mem mem;
static int kernel_fd = -1, initrd_fd = -1;
static char kernel_path[64], initrd_path[64];

/* A temporary file, unlinked at once (nothing is left behind, even after a crash), reached by
 * its /proc/self/fd path as the loaders open files by name. */
static int temp_file(char *path)
{
	char name[] = "/dev/shm/skiff-fuzz-x86-XXXXXX", fallback[] = "/tmp/skiff-fuzz-x86-XXXXXX";
	char *used = name;
	int fd = mkstemp(name);

	if (fd < 0) {
		used = fallback;
		fd = mkstemp(fallback);
	}
	if (fd < 0)
		abort();
	unlink(used);
	snprintf(path, 64, "/proc/self/fd/%d", fd);
	return fd;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_input in = {data, size};
	struct x86_kernel_args args = {.kernel_path = kernel_path, .rsdp_addr = 0xe0000};
	struct x86_boot_info info;
	char cmdline[256];
	uint8_t initrd_pages;
	size_t n;

	if (kernel_fd < 0) {
		struct guest_region r = {.gpa = 0, .size = RAM_SIZE};

		log_set_level(LOG_ERROR);
		if (log_set_path("/dev/null"))
			abort();
		fuzz_ram_map(&mem, &r, 1);
		kernel_fd = temp_file(kernel_path);
		initrd_fd = temp_file(initrd_path);
	}
	args.protocol = (enum x86_boot_protocol)(fuzz_u8(&in) % 3);
	initrd_pages = fuzz_u8(&in);
	n = fuzz_bytes(&in, cmdline, fuzz_u8(&in) % sizeof(cmdline));
	cmdline[n] = 0;
	args.cmdline = cmdline;
	if (initrd_pages) {
		if (ftruncate(initrd_fd, (off_t)initrd_pages << 12))
			abort();
		args.initrd_path = initrd_path;
	}
	if (ftruncate(kernel_fd, 0) || pwrite(kernel_fd, in.data, in.len, 0) != (ssize_t)in.len)
		abort();
	if (x86_load_kernel(&mem, &args, &info))
		return 0;
	if (!guest_mem_ptr(&mem, info.entry, 1) || !guest_mem_ptr(&mem, info.boot_arg, 1) ||
	    !guest_mem_ptr(&mem, info.stack - 8, 8))
		__builtin_trap(); /* an accepted kernel that enters or boots outside RAM */
	return 0;
}
