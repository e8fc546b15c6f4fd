/* Multiboot v1 kernels (arch/x86/multiboot.c): finding the header, the information structure,
 * loading an ELF32 and an a.out-kludge image through x86_load_kernel with the initrd as module 0
 * (skiff's Linux additions kept out of the command line), the machine state at the entry, and
 * refusals. Files are crafted in a temporary directory; guest RAM is 64 MiB filled with 0xaa. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <elf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "arch/x86/boot.h"
#include "arch/x86/boot_params.h"
#include "arch/x86/layout.h"
#include "arch/x86/multiboot.h"
#include "base/guest_mem.h"

#define MiB	   (1ULL << 20)
#define GUEST_SIZE (64 * MiB)
#define BUF_SIZE   (64 * 1024)
#define LOAD	   0x200000u

static char tmpdir[] = "/tmp/skiff-test-multiboot-XXXXXX";
static char kernel_path[256], initrd_path[256];

struct fixture {
	struct guest_mem mem;
	uint8_t *buf;
	struct x86_kernel_args args;
	struct x86_boot_info info;
};

static void put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

/* A multiboot header at `off` with `flags` and a right checksum. */
static void put_header(uint8_t *buf, size_t off, uint32_t flags)
{
	put32(buf + off, X86_MULTIBOOT_HEADER_MAGIC);
	put32(buf + off + 4, flags);
	put32(buf + off + 8, (uint32_t) - (X86_MULTIBOOT_HEADER_MAGIC + flags));
}

static void write_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

/* An a.out-kludge image: the header at 0x40, loaded from file offset 0 to LOAD; 0x1000 bytes
 * of file, bss to LOAD + 0x3000, entry at LOAD + 0x80. */
static size_t make_aout(uint8_t *buf)
{
	memset(buf, 0, BUF_SIZE);
	for (int i = 0x100; i < 0x1000; i++)
		buf[i] = (uint8_t)(i * 5 + 3);
	put_header(buf, 0x40, X86_MULTIBOOT_AOUT_KLUDGE | X86_MULTIBOOT_MEMORY_INFO);
	put32(buf + 0x4c, LOAD + 0x40);	  /* header_addr */
	put32(buf + 0x50, LOAD);	  /* load_addr */
	put32(buf + 0x54, LOAD + 0x1000); /* load_end_addr */
	put32(buf + 0x58, LOAD + 0x3000); /* bss_end_addr */
	put32(buf + 0x5c, LOAD + 0x80);	  /* entry_addr */
	return 0x1000;
}

/* An ELF32 i386 kernel: one PT_LOAD (file offset 0x1000, 0x800 bytes, 0x2000 in memory) linked
 * at virtual 0xc0000000 + LOAD, physical LOAD; the header at the segment's start. */
static size_t make_elf32(uint8_t *buf)
{
	Elf32_Ehdr *eh = (Elf32_Ehdr *)buf;
	Elf32_Phdr *ph = (Elf32_Phdr *)(buf + sizeof(*eh));

	memset(buf, 0, BUF_SIZE);
	memcpy(eh->e_ident, ELFMAG, SELFMAG);
	eh->e_ident[EI_CLASS] = ELFCLASS32;
	eh->e_ident[EI_DATA] = ELFDATA2LSB;
	eh->e_ident[EI_VERSION] = EV_CURRENT;
	eh->e_type = ET_EXEC;
	eh->e_machine = EM_386;
	eh->e_version = EV_CURRENT;
	eh->e_entry = 0xc0000000u + LOAD + 0x20;
	eh->e_phoff = sizeof(*eh);
	eh->e_ehsize = sizeof(*eh);
	eh->e_phentsize = sizeof(*ph);
	eh->e_phnum = 1;
	ph->p_type = PT_LOAD;
	ph->p_offset = 0x1000;
	ph->p_vaddr = 0xc0000000u + LOAD;
	ph->p_paddr = LOAD;
	ph->p_filesz = 0x800;
	ph->p_memsz = 0x2000;
	for (int i = 0x1000; i < 0x1800; i++)
		buf[i] = (uint8_t)(i * 3 + 1);
	put_header(buf, 0x1000, X86_MULTIBOOT_PAGE_ALIGN | X86_MULTIBOOT_MEMORY_INFO);
	return 0x1800;
}

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	struct guest_region r = {.gpa = 0, .size = GUEST_SIZE};

	if (!fx || guest_mem_map(&fx->mem, &r, 1) < 0)
		return -1;
	fx->buf = malloc(BUF_SIZE);
	memset(guest_mem_ptr(&fx->mem, 0, GUEST_SIZE), 0xaa, GUEST_SIZE);
	fx->args = (struct x86_kernel_args){
	    .kernel_path = kernel_path,
	    .cmdline = "test=1 console=ttyS0 root=/dev/vda rw",
	    .user_cmdline = "test=1",
	};
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;

	guest_mem_unmap(&fx->mem);
	free(fx->buf);
	free(fx);
	return 0;
}

static void test_find_header(void **state)
{
	uint8_t buf[X86_MULTIBOOT_SEARCH_BYTES];
	struct x86_multiboot_header h;

	memset(buf, 0, sizeof(buf));
	assert_int_equal(x86_multiboot_find_header("k", buf, sizeof(buf), &h), 0);
	/* Unaligned, or with a wrong checksum: not a header. */
	put_header(buf, 0x102, 0);
	assert_int_equal(x86_multiboot_find_header("k", buf, sizeof(buf), &h), 0);
	memset(buf, 0, sizeof(buf));
	put_header(buf, 0x100, 0);
	put32(buf + 0x108, 0);
	assert_int_equal(x86_multiboot_find_header("k", buf, sizeof(buf), &h), 0);
	/* The first valid one counts; a bad one before it is skipped. */
	put_header(buf, 0x200, 3);
	assert_int_equal(x86_multiboot_find_header("k", buf, sizeof(buf), &h), 1);
	assert_int_equal(h.offset, 0x200);
	assert_int_equal(h.flags, 3);
	/* The last place it can be: the 12 bytes end at 8192. */
	memset(buf, 0, sizeof(buf));
	put_header(buf, sizeof(buf) - 12, 0);
	assert_int_equal(x86_multiboot_find_header("k", buf, sizeof(buf), &h), 1);
	/* ... but its address fields would be past the window. */
	put_header(buf, sizeof(buf) - 12, X86_MULTIBOOT_AOUT_KLUDGE);
	assert_int_equal(x86_multiboot_find_header("k", buf, sizeof(buf), &h), -ENOEXEC);
	/* Beyond 8192 bytes nothing is looked at. */
	assert_int_equal(x86_multiboot_find_header("k", buf, sizeof(buf) - 4, &h), 0);
	/* Required flags skiff does not know: refused. The video flag is only warned about. */
	memset(buf, 0, sizeof(buf));
	put_header(buf, 0, 1u << 5);
	assert_int_equal(x86_multiboot_find_header("k", buf, sizeof(buf), &h), -ENOEXEC);
	put_header(buf, 0, X86_MULTIBOOT_VIDEO_MODE | (1u << 20));
	assert_int_equal(x86_multiboot_find_header("k", buf, sizeof(buf), &h), 1);
}

static void check_info(struct fixture *fx, const char *cmdline, int mods)
{
	struct x86_multiboot_info info;
	struct x86_multiboot_mmap_entry e[4];

	assert_int_equal(guest_mem_read(&fx->mem, X86_MULTIBOOT_INFO_ADDR, &info, sizeof(info)), 0);
	assert_int_equal(info.flags, 0x24d);
	assert_int_equal(info.mem_lower, 639);
	assert_int_equal(info.mem_upper, (GUEST_SIZE - MiB) >> 10);
	assert_string_equal((char *)guest_mem_ptr(&fx->mem, info.cmdline, 1), cmdline);
	assert_string_equal((char *)guest_mem_ptr(&fx->mem, info.boot_loader_name, 1), "skiff");
	assert_int_equal(info.mmap_length, 3 * sizeof(e[0]));
	assert_int_equal(guest_mem_read(&fx->mem, info.mmap_addr, e, 3 * sizeof(e[0])), 0);
	assert_int_equal(e[0].size, 20);
	assert_int_equal(e[0].addr, 0);
	assert_int_equal(e[0].len, X86_EBDA_START);
	assert_int_equal(e[0].type, 1);
	assert_int_equal(e[1].type, 2);
	assert_int_equal(e[2].addr, MiB);
	assert_int_equal(e[2].len, GUEST_SIZE - MiB);
	assert_int_equal(info.mods_count, mods);
}

static void test_aout_kludge(void **state)
{
	struct fixture *fx = *state;
	size_t len = make_aout(fx->buf);
	struct kvm_sregs sregs;
	struct kvm_regs regs;
	struct kvm_fpu fpu;
	uint8_t *p;
	char want[300];

	write_file(kernel_path, fx->buf, len);
	assert_int_equal(x86_load_kernel(&fx->mem, &fx->args, &fx->info), 0);
	assert_int_equal(fx->info.mode, X86_ENTRY_MULTIBOOT32);
	assert_int_equal(fx->info.entry, LOAD + 0x80);
	assert_int_equal(fx->info.boot_arg, X86_MULTIBOOT_INFO_ADDR);
	p = guest_mem_ptr(&fx->mem, LOAD, 0x3001);
	assert_memory_equal(p, fx->buf, 0x1000);
	for (int i = 0x1000; i < 0x3000; i++)
		assert_int_equal(p[i], 0);
	assert_int_equal(p[0x3000], 0xaa); /* nothing past bss_end_addr */
	/* The Linux additions stay out: the kernel's path, then the user's words. */
	snprintf(want, sizeof(want), "%s test=1", kernel_path);
	assert_string_equal(fx->info.cmdline, want);
	check_info(fx, want, 0);

	/* The machine state the spec asks for: eax, ebx, 32-bit flat segments, paging off. */
	memset(&sregs, 0, sizeof(sregs));
	assert_int_equal(x86_build_boot_cpu_state(&fx->mem, &fx->info, &sregs, &regs, &fpu), 0);
	assert_int_equal(regs.rax, 0x2badb002);
	assert_int_equal(regs.rbx, X86_MULTIBOOT_INFO_ADDR);
	assert_int_equal(regs.rip, LOAD + 0x80);
	assert_int_equal(regs.rflags & 0x200, 0);
	assert_int_equal(sregs.cr0 & 0x80000001, 1);
	assert_int_equal(sregs.efer, 0);
	assert_int_equal(sregs.cs.db, 1);
	assert_int_equal(sregs.cs.l, 0);
	assert_int_equal(sregs.cs.base, 0);
	assert_int_equal(sregs.cs.limit, 0xffffffff);
	assert_int_equal(sregs.ds.base, 0);
	assert_int_equal(sregs.ss.limit, 0xffffffff);
}

static void test_elf32_with_module(void **state)
{
	struct fixture *fx = *state;
	size_t len = make_elf32(fx->buf);
	static const char module[] = "module bytes";
	struct x86_multiboot_info info;
	struct x86_multiboot_module mod;
	uint8_t *p;
	char want[300];

	write_file(kernel_path, fx->buf, len);
	write_file(initrd_path, module, sizeof(module));
	fx->args.initrd_path = initrd_path;
	fx->args.user_cmdline = NULL;
	assert_int_equal(x86_load_kernel(&fx->mem, &fx->args, &fx->info), 0);
	/* e_entry is virtual: translated through the segment to its physical address. */
	assert_int_equal(fx->info.entry, LOAD + 0x20);
	p = guest_mem_ptr(&fx->mem, LOAD, 0x2001);
	assert_memory_equal(p, fx->buf + 0x1000, 0x800);
	for (int i = 0x800; i < 0x2000; i++)
		assert_int_equal(p[i], 0);
	check_info(fx, kernel_path, 1);
	assert_int_equal(guest_mem_read(&fx->mem, X86_MULTIBOOT_INFO_ADDR, &info, sizeof(info)), 0);
	assert_int_equal(guest_mem_read(&fx->mem, info.mods_addr, &mod, sizeof(mod)), 0);
	/* Page-aligned right after the kernel's memory, as QEMU places it. */
	assert_int_equal(mod.mod_start, LOAD + 0x2000);
	assert_int_equal(mod.mod_end, LOAD + 0x2000 + sizeof(module));
	assert_memory_equal(guest_mem_ptr(&fx->mem, mod.mod_start, sizeof(module)), module,
			    sizeof(module));
	assert_string_equal((char *)guest_mem_ptr(&fx->mem, mod.string, 1), initrd_path);
	snprintf(want, sizeof(want), "%s", kernel_path);
	assert_string_equal(fx->info.cmdline, want);
}

/* With an explicit --boot-protocol the header is not looked for: a Linux ELF64 is wanted. */
static void test_protocol_skips_multiboot(void **state)
{
	struct fixture *fx = *state;
	size_t len = make_elf32(fx->buf);

	write_file(kernel_path, fx->buf, len);
	fx->args.protocol = X86_BOOT_LINUX64;
	assert_int_equal(x86_load_kernel(&fx->mem, &fx->args, &fx->info), -ENOEXEC);
}

static void load_fails(struct fixture *fx, size_t len, int err)
{
	write_file(kernel_path, fx->buf, len);
	assert_int_equal(x86_load_kernel(&fx->mem, &fx->args, &fx->info), err);
}

static void test_impossible_addresses(void **state)
{
	struct fixture *fx = *state;
	size_t len;

	/* Below 1 MiB: skiff's GDT, info, command line and ACPI tables are there. */
	len = make_aout(fx->buf);
	put32(fx->buf + 0x4c, 0x8040);
	put32(fx->buf + 0x50, 0x8000);
	put32(fx->buf + 0x54, 0x9000);
	put32(fx->buf + 0x58, 0);
	put32(fx->buf + 0x5c, 0x8080);
	load_fails(fx, len, -ENOEXEC);
	/* bss beyond RAM, and beyond 4 GiB. */
	len = make_aout(fx->buf);
	put32(fx->buf + 0x58, 0x10000000);
	load_fails(fx, len, -ENOMEM);
	/* load_end_addr beyond the file; below load_addr. */
	len = make_aout(fx->buf);
	put32(fx->buf + 0x54, LOAD + 0x1001);
	load_fails(fx, len, -ENOEXEC);
	put32(fx->buf + 0x54, LOAD - 1);
	load_fails(fx, len, -ENOEXEC);
	/* bss_end_addr below the loaded bytes' end; entry outside. */
	len = make_aout(fx->buf);
	put32(fx->buf + 0x58, LOAD + 0x800);
	load_fails(fx, len, -ENOEXEC);
	len = make_aout(fx->buf);
	put32(fx->buf + 0x5c, LOAD + 0x3000);
	load_fails(fx, len, -ENOEXEC);
	/* header_addr - load_addr more than the header's offset: the load starts before byte 0. */
	len = make_aout(fx->buf);
	put32(fx->buf + 0x50, LOAD - 0x1000);
	load_fails(fx, len, -ENOEXEC);
	/* ELF: a segment past RAM, one ending past 4 GiB, filesz > memsz, past the file, the entry
	 * outside every segment, the wrong machine. */
	len = make_elf32(fx->buf);
	((Elf32_Phdr *)(fx->buf + sizeof(Elf32_Ehdr)))->p_memsz = 0x10000000;
	load_fails(fx, len, -ENOMEM);
	len = make_elf32(fx->buf);
	((Elf32_Phdr *)(fx->buf + sizeof(Elf32_Ehdr)))->p_paddr = 0xfffff000;
	load_fails(fx, len, -ENOEXEC);
	len = make_elf32(fx->buf);
	((Elf32_Phdr *)(fx->buf + sizeof(Elf32_Ehdr)))->p_filesz = 0x3000;
	load_fails(fx, len, -ENOEXEC);
	len = make_elf32(fx->buf);
	((Elf32_Phdr *)(fx->buf + sizeof(Elf32_Ehdr)))->p_offset = 0x1100;
	load_fails(fx, len, -ENOEXEC);
	len = make_elf32(fx->buf);
	((Elf32_Ehdr *)fx->buf)->e_entry = LOAD + 0x20; /* physical, not the virtual link address */
	load_fails(fx, len, -ENOEXEC);
	len = make_elf32(fx->buf);
	((Elf32_Ehdr *)fx->buf)->e_machine = EM_ARM;
	load_fails(fx, len, -ENOEXEC);
	len = make_elf32(fx->buf);
	((Elf32_Ehdr *)fx->buf)->e_phnum = 0;
	load_fails(fx, len, -ENOEXEC);
	/* A module that does not fit after the kernel. */
	len = make_aout(fx->buf);
	write_file(kernel_path, fx->buf, len);
	assert_int_equal(truncate(initrd_path, GUEST_SIZE), 0);
	fx->args.initrd_path = initrd_path;
	assert_int_equal(x86_load_kernel(&fx->mem, &fx->args, &fx->info), -ENOMEM);
}

static int group_setup(void **state)
{
	if (!mkdtemp(tmpdir))
		return -1;
	snprintf(kernel_path, sizeof(kernel_path), "%s/kernel", tmpdir);
	snprintf(initrd_path, sizeof(initrd_path), "%s/initrd", tmpdir);
	return 0;
}

static int group_teardown(void **state)
{
	unlink(kernel_path);
	unlink(initrd_path);
	rmdir(tmpdir);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_find_header),
	    cmocka_unit_test_setup_teardown(test_aout_kludge, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_elf32_with_module, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_protocol_skips_multiboot, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_impossible_addresses, setup, teardown),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
