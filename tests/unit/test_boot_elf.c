/* ELF64 vmlinux loading: segments, bss, the PVH note and the protocol choice, and rejection of
 * malformed files. The ELF files are crafted in a temporary directory. Set SKIFF_TEST_VMLINUX to
 * a real vmlinux to also check that one (see the boot loader's report for the extraction). */
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
#include "base/guest_mem.h"

#define MiB	   (1ULL << 20)
#define GUEST_SIZE (64 * MiB)
#define BUF_SIZE   (64 * 1024)
#define SEG_A	   0x1000000ULL
#define SEG_B	   0x1200000ULL
#define ENTRY64	   (SEG_A + 0x100)
#define PVH_ENTRY  (SEG_A + 0x40)
#define XEN_PHYS32 18

static char tmpdir[] = "/tmp/skiff-test-elf-XXXXXX";
static char kernel_path[256], initrd_path[256];

struct seg {
	uint32_t type;
	uint64_t paddr;
	const void *data;
	uint64_t filesz, memsz;
};

/* An ELF64 x86_64 executable: headers first, each segment's bytes at the next 4 KiB boundary. */
static size_t make_elf(uint8_t *buf, uint64_t entry, const struct seg *segs, int n)
{
	Elf64_Ehdr *eh = (Elf64_Ehdr *)buf;
	Elf64_Phdr *ph = (Elf64_Phdr *)(buf + sizeof(*eh));
	size_t off = 0x1000;

	memset(buf, 0, BUF_SIZE);
	memcpy(eh->e_ident, ELFMAG, SELFMAG);
	eh->e_ident[EI_CLASS] = ELFCLASS64;
	eh->e_ident[EI_DATA] = ELFDATA2LSB;
	eh->e_ident[EI_VERSION] = EV_CURRENT;
	eh->e_type = ET_EXEC;
	eh->e_machine = EM_X86_64;
	eh->e_version = EV_CURRENT;
	eh->e_entry = entry;
	eh->e_phoff = sizeof(*eh);
	eh->e_ehsize = sizeof(*eh);
	eh->e_phentsize = sizeof(Elf64_Phdr);
	eh->e_phnum = n;
	for (int i = 0; i < n; i++) {
		ph[i].p_type = segs[i].type;
		ph[i].p_offset = off;
		ph[i].p_paddr = segs[i].paddr;
		ph[i].p_vaddr = segs[i].paddr + 0xffffffff80000000ULL;
		ph[i].p_filesz = segs[i].filesz;
		ph[i].p_memsz = segs[i].memsz;
		assert_true(off + segs[i].filesz <= BUF_SIZE);
		memcpy(buf + off, segs[i].data, segs[i].filesz);
		off += (segs[i].filesz + 0xfff) & ~0xfffULL;
	}
	return off;
}

static Elf64_Phdr *phdr(uint8_t *buf, int i)
{
	return (Elf64_Phdr *)(buf + sizeof(Elf64_Ehdr)) + i;
}

/* One note: header, name padded to 4, value padded to 4. */
static size_t add_note(uint8_t *p, const char *name, uint32_t type, const void *desc, uint32_t len)
{
	Elf64_Nhdr nh = {.n_namesz = strlen(name) + 1, .n_descsz = len, .n_type = type};
	size_t off = sizeof(nh);

	memcpy(p, &nh, sizeof(nh));
	memcpy(p + off, name, nh.n_namesz);
	off += (nh.n_namesz + 3) & ~3u;
	memcpy(p + off, desc, len);
	off += (len + 3) & ~3u;
	return off;
}

static uint8_t seg_a[0x1800], seg_b[0x100], notes[256];

/* The usual test kernel: a text segment, a data segment with 0x2f00 bytes of bss, and when
 * `pvh_desc_len` is 4 or 8 a PT_NOTE with a GNU note, another Xen note and the PVH entry. */
static size_t make_kernel(uint8_t *buf, int pvh_desc_len)
{
	struct seg segs[3] = {
	    {PT_LOAD, SEG_A, seg_a, sizeof(seg_a), sizeof(seg_a)},
	    {PT_LOAD, SEG_B, seg_b, sizeof(seg_b), 0x3000},
	};
	size_t n = 0;

	for (size_t i = 0; i < sizeof(seg_a); i++)
		seg_a[i] = (uint8_t)(i * 7 + 1);
	memset(seg_b, 0x5b, sizeof(seg_b));
	if (pvh_desc_len) {
		uint64_t entry = PVH_ENTRY, version = 0x1234;
		uint8_t build_id[20] = {1, 2, 3};

		n += add_note(notes + n, "GNU", NT_GNU_BUILD_ID, build_id, sizeof(build_id));
		n += add_note(notes + n, "Xen", 6 /* XEN_ELFNOTE_GUEST_OS */, &version, 6);
		n += add_note(notes + n, "Xen", XEN_PHYS32, &entry, pvh_desc_len);
		segs[2] = (struct seg){PT_NOTE, SEG_A + 0x1000, notes, n, n};
	}
	return make_elf(buf, ENTRY64, segs, pvh_desc_len ? 3 : 2);
}

static void write_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

struct fixture {
	struct guest_mem mem;
	uint8_t *buf;
	struct x86_kernel_args args;
	struct x86_boot_info info;
};

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	struct guest_region r = {.gpa = 0, .size = GUEST_SIZE};

	if (!fx || guest_mem_map(&fx->mem, &r, 1) < 0)
		return -1;
	fx->buf = malloc(BUF_SIZE);
	/* Stale bytes everywhere, so zeroing (or not) shows. */
	memset(guest_mem_ptr(&fx->mem, 0, GUEST_SIZE), 0xaa, GUEST_SIZE);
	fx->args = (struct x86_kernel_args){
	    .kernel_path = kernel_path,
	    .cmdline = "console=ttyS0",
	    .rsdp_addr = X86_ACPI_START,
	};
	*state = fx;
	return fx->buf ? 0 : -1;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;

	guest_mem_unmap(&fx->mem);
	free(fx->buf);
	free(fx);
	unlink(kernel_path);
	unlink(initrd_path);
	return 0;
}

static int load(struct fixture *fx, size_t len)
{
	write_file(kernel_path, fx->buf, len);
	return x86_load_kernel(&fx->mem, &fx->args, &fx->info);
}

static void test_segments_and_bss(void **state)
{
	struct fixture *fx = *state;
	const uint8_t *b;
	struct x86_boot_params bp;

	assert_int_equal(load(fx, make_kernel(fx->buf, 0)), 0);
	assert_memory_equal(guest_mem_ptr(&fx->mem, SEG_A, sizeof(seg_a)), seg_a, sizeof(seg_a));
	b = guest_mem_ptr(&fx->mem, SEG_B, 0x3001);
	assert_memory_equal(b, seg_b, sizeof(seg_b));
	for (size_t i = sizeof(seg_b); i < 0x3000; i++)
		assert_int_equal(b[i], 0);
	assert_int_equal(b[0x3000], 0xaa); /* not beyond p_memsz */

	assert_int_equal(fx->info.mode, X86_ENTRY_LONG64);
	assert_int_equal(fx->info.entry, ENTRY64);
	assert_int_equal(fx->info.boot_arg, X86_BOOT_PARAMS_ADDR);
	assert_int_equal(fx->info.stack, X86_BOOT_STACK_ADDR);
	assert_string_equal(fx->info.format, "ELF vmlinux (64-bit entry)");

	/* The synthetic setup header startup_64 and setup_arch read. */
	assert_int_equal(guest_mem_read(&fx->mem, X86_BOOT_PARAMS_ADDR, &bp, sizeof(bp)), 0);
	assert_int_equal(bp.hdr.boot_flag, 0xaa55);
	assert_int_equal(bp.hdr.header, X86_SETUP_HDR_MAGIC);
	assert_true(bp.hdr.version >= 0x020e);
	assert_int_equal(bp.hdr.type_of_loader, 0xff);
	assert_int_equal(bp.hdr.kernel_alignment, 0x1000000);
	assert_true(bp.hdr.cmdline_size >= strlen("console=ttyS0"));
	assert_int_equal(bp.hdr.cmd_line_ptr, X86_CMDLINE_ADDR);
	assert_string_equal((char *)guest_mem_ptr(&fx->mem, X86_CMDLINE_ADDR, 1), "console=ttyS0");
	assert_int_equal(bp.acpi_rsdp_addr, X86_ACPI_START);
	assert_int_equal(bp.hdr.ramdisk_image, 0);
	assert_int_equal(bp.sentinel, 0);
	assert_int_equal(bp.e820_entries, 3);
}

static void test_pvh_note_used_in_auto(void **state)
{
	struct fixture *fx = *state;
	struct x86_hvm_start_info si;

	for (int len = 4; len <= 8; len += 4) {
		assert_int_equal(load(fx, make_kernel(fx->buf, len)), 0);
		assert_int_equal(fx->info.mode, X86_ENTRY_PVH32);
		assert_int_equal(fx->info.entry, PVH_ENTRY);
		assert_int_equal(fx->info.boot_arg, X86_PVH_INFO_ADDR);
		assert_string_equal(fx->info.format, "ELF vmlinux (PVH)");
		assert_int_equal(guest_mem_read(&fx->mem, X86_PVH_INFO_ADDR, &si, sizeof(si)), 0);
		assert_int_equal(si.magic, X86_HVM_START_MAGIC);
		assert_int_equal(si.rsdp_paddr, X86_ACPI_START);
		assert_string_equal((char *)guest_mem_ptr(&fx->mem, si.cmdline_paddr, 1),
				    "console=ttyS0");
	}
	fx->args.protocol = X86_BOOT_PVH;
	assert_int_equal(load(fx, make_kernel(fx->buf, 8)), 0);
	assert_int_equal(fx->info.mode, X86_ENTRY_PVH32);
}

static void test_forced_linux64_ignores_note(void **state)
{
	struct fixture *fx = *state;

	fx->args.protocol = X86_BOOT_LINUX64;
	assert_int_equal(load(fx, make_kernel(fx->buf, 8)), 0);
	assert_int_equal(fx->info.mode, X86_ENTRY_LONG64);
	assert_int_equal(fx->info.entry, ENTRY64);
	assert_int_equal(fx->info.boot_arg, X86_BOOT_PARAMS_ADDR);
}

static void test_forced_pvh_without_note(void **state)
{
	struct fixture *fx = *state;

	fx->args.protocol = X86_BOOT_PVH;
	assert_int_equal(load(fx, make_kernel(fx->buf, 0)), -ENOEXEC);
}

static void test_initrd_above_segments(void **state)
{
	struct fixture *fx = *state;
	uint8_t initrd[5000];
	struct x86_boot_params bp;
	struct x86_hvm_start_info si;
	struct x86_hvm_modlist_entry mod;

	for (size_t i = 0; i < sizeof(initrd); i++)
		initrd[i] = (uint8_t)(i ^ 0x3c);
	write_file(initrd_path, initrd, sizeof(initrd));
	fx->args.initrd_path = initrd_path;

	assert_int_equal(load(fx, make_kernel(fx->buf, 0)), 0);
	assert_int_equal(guest_mem_read(&fx->mem, X86_BOOT_PARAMS_ADDR, &bp, sizeof(bp)), 0);
	assert_int_equal(bp.hdr.ramdisk_size, sizeof(initrd));
	assert_int_equal(bp.hdr.ramdisk_image % 4096, 0);
	assert_true(bp.hdr.ramdisk_image >= SEG_B + 0x3000);
	assert_true(bp.hdr.ramdisk_image + sizeof(initrd) <= GUEST_SIZE);
	assert_true(GUEST_SIZE - (bp.hdr.ramdisk_image + sizeof(initrd)) < 4096);
	assert_memory_equal(guest_mem_ptr(&fx->mem, bp.hdr.ramdisk_image, sizeof(initrd)), initrd,
			    sizeof(initrd));

	/* PVH passes it as module 0. */
	assert_int_equal(load(fx, make_kernel(fx->buf, 8)), 0);
	assert_int_equal(guest_mem_read(&fx->mem, X86_PVH_INFO_ADDR, &si, sizeof(si)), 0);
	assert_int_equal(si.nr_modules, 1);
	assert_int_equal(guest_mem_read(&fx->mem, si.modlist_paddr, &mod, sizeof(mod)), 0);
	assert_int_equal(mod.size, sizeof(initrd));
	assert_memory_equal(guest_mem_ptr(&fx->mem, mod.paddr, sizeof(initrd)), initrd,
			    sizeof(initrd));

	/* Never over the kernel: exactly the room above its highest segment fits, a byte more
	 * does not (though it would fit lower down). */
	uint64_t room = GUEST_SIZE - (SEG_B + 0x3000);

	assert_int_equal(truncate(initrd_path, room), 0);
	assert_int_equal(load(fx, make_kernel(fx->buf, 0)), 0);
	assert_int_equal(guest_mem_read(&fx->mem, X86_BOOT_PARAMS_ADDR, &bp, sizeof(bp)), 0);
	assert_int_equal(bp.hdr.ramdisk_image, SEG_B + 0x3000);
	assert_int_equal(truncate(initrd_path, room + 1), 0);
	assert_int_equal(load(fx, make_kernel(fx->buf, 0)), -ENOMEM);

	/* Missing initrd file is an error, not a silent boot without one. */
	unlink(initrd_path);
	assert_int_equal(load(fx, make_kernel(fx->buf, 0)), -ENOENT);
}

static void test_truncated(void **state)
{
	struct fixture *fx = *state;
	size_t len = make_kernel(fx->buf, 8);

	assert_int_equal(load(fx, 40), -ENOEXEC);		       /* inside the ELF header */
	assert_int_equal(load(fx, sizeof(Elf64_Ehdr) + 30), -ENOEXEC); /* inside the phdrs */
	assert_int_equal(load(fx, 0x1000 + 0x100), -ENOEXEC);	       /* inside a PT_LOAD */
	assert_int_equal(load(fx, len - 0x1000 + 0x10), -ENOEXEC);     /* inside the notes */
	assert_int_equal(load(fx, len), 0);
}

static void test_phdrs_outside_file(void **state)
{
	struct fixture *fx = *state;
	size_t len = make_kernel(fx->buf, 0);
	Elf64_Ehdr *eh = (Elf64_Ehdr *)fx->buf;

	eh->e_phoff = len - 10;
	assert_int_equal(load(fx, len), -ENOEXEC);
	eh->e_phoff = UINT64_MAX - 8; /* offset + size overflows */
	assert_int_equal(load(fx, len), -ENOEXEC);
	eh->e_phoff = sizeof(*eh);
	eh->e_phnum = 0;
	assert_int_equal(load(fx, len), -ENOEXEC);
	eh->e_phnum = 2;
	eh->e_phentsize = 32;
	assert_int_equal(load(fx, len), -ENOEXEC);
}

static void test_segment_offset_outside_file(void **state)
{
	struct fixture *fx = *state;
	size_t len = make_kernel(fx->buf, 0);

	phdr(fx->buf, 1)->p_offset = len;
	assert_int_equal(load(fx, len), -ENOEXEC);
	phdr(fx->buf, 1)->p_offset = UINT64_MAX - 0x10;
	assert_int_equal(load(fx, len), -ENOEXEC);
}

static void test_segment_outside_ram(void **state)
{
	struct fixture *fx = *state;
	size_t len = make_kernel(fx->buf, 0);

	phdr(fx->buf, 1)->p_paddr = GUEST_SIZE - 0x1000; /* memsz 0x3000 runs past the end */
	assert_int_equal(load(fx, len), -ENOMEM);
	phdr(fx->buf, 1)->p_paddr = UINT64_MAX - 0x1000; /* and wraps */
	assert_int_equal(load(fx, len), -ENOMEM);
	phdr(fx->buf, 1)->p_paddr = 0x7000; /* over skiff's zero page */
	assert_int_equal(load(fx, len), -ENOEXEC);
}

static void test_filesz_over_memsz(void **state)
{
	struct fixture *fx = *state;
	size_t len = make_kernel(fx->buf, 0);

	phdr(fx->buf, 1)->p_memsz = phdr(fx->buf, 1)->p_filesz - 1;
	assert_int_equal(load(fx, len), -ENOEXEC);
}

static void test_wrong_machine_or_class(void **state)
{
	struct fixture *fx = *state;
	size_t len = make_kernel(fx->buf, 0);
	Elf64_Ehdr *eh = (Elf64_Ehdr *)fx->buf;

	eh->e_machine = EM_AARCH64;
	assert_int_equal(load(fx, len), -ENOEXEC);
	eh->e_machine = EM_X86_64;
	eh->e_ident[EI_CLASS] = ELFCLASS32;
	assert_int_equal(load(fx, len), -ENOEXEC);
	eh->e_ident[EI_CLASS] = ELFCLASS64;
	eh->e_type = ET_DYN;
	assert_int_equal(load(fx, len), -ENOEXEC);
	eh->e_type = ET_EXEC;
	assert_int_equal(load(fx, len), 0);
}

static void test_entry_outside_segments(void **state)
{
	struct fixture *fx = *state;
	size_t len = make_kernel(fx->buf, 0);

	((Elf64_Ehdr *)fx->buf)->e_entry = SEG_B + 0x200; /* in bss, not in the file's bytes */
	assert_int_equal(load(fx, len), -ENOEXEC);
}

static void test_malformed_notes(void **state)
{
	struct fixture *fx = *state;
	size_t len = make_kernel(fx->buf, 8);
	Elf64_Phdr *note = phdr(fx->buf, 2);
	Elf64_Nhdr *nh = (Elf64_Nhdr *)(fx->buf + note->p_offset);

	nh->n_namesz = 0xfffffffe; /* runs past the segment (and would overflow 32 bits) */
	assert_int_equal(load(fx, len), -ENOEXEC);

	len = make_kernel(fx->buf, 8);
	note->p_filesz = 1 << 30; /* bigger than the file and than any sane note segment */
	assert_int_equal(load(fx, len), -ENOEXEC);

	/* A PVH note whose value is neither 32 nor 64 bits. */
	len = make_kernel(fx->buf, 8);
	uint8_t *p = fx->buf + note->p_offset, *end = p + note->p_filesz;
	while (p < end) {
		Elf64_Nhdr *h = (Elf64_Nhdr *)p;

		if (h->n_type == XEN_PHYS32) {
			h->n_descsz = 2;
			break;
		}
		p += sizeof(*h) + ((h->n_namesz + 3) & ~3u) + ((h->n_descsz + 3) & ~3u);
	}
	assert_true(p < end);
	assert_int_equal(load(fx, len), -ENOEXEC);
}

static void test_not_a_kernel(void **state)
{
	struct fixture *fx = *state;

	memset(fx->buf, 'x', 4096);
	assert_int_equal(load(fx, 4096), -ENOEXEC);
	assert_int_equal(load(fx, 0), -ENOEXEC);
	fx->args.kernel_path = "/nonexistent/vmlinux";
	assert_int_equal(x86_load_kernel(&fx->mem, &fx->args, &fx->info), -ENOENT);
	fx->args.kernel_path = tmpdir; /* a directory */
	assert_int_equal(x86_load_kernel(&fx->mem, &fx->args, &fx->info), -EINVAL);
}

/* Optional: a real vmlinux (SKIFF_TEST_VMLINUX=path) loads, and a Debian one has a PVH entry. */
static void test_real_vmlinux(void **state)
{
	struct fixture *fx = *state;
	const char *path = getenv("SKIFF_TEST_VMLINUX");
	struct guest_mem big;
	struct guest_region r = {.gpa = 0, .size = 512 * MiB};

	if (!path)
		skip();
	assert_int_equal(guest_mem_map(&big, &r, 1), 0);
	fx->args.kernel_path = path;
	assert_int_equal(x86_load_kernel(&big, &fx->args, &fx->info), 0);
	print_message("%s: %s, entry 0x%llx\n", path, fx->info.format,
		      (unsigned long long)fx->info.entry);
	assert_int_equal(fx->info.mode, X86_ENTRY_PVH32);
	fx->args.protocol = X86_BOOT_LINUX64;
	assert_int_equal(x86_load_kernel(&big, &fx->args, &fx->info), 0);
	print_message("%s: %s, entry 0x%llx\n", path, fx->info.format,
		      (unsigned long long)fx->info.entry);
	assert_int_equal(fx->info.mode, X86_ENTRY_LONG64);
	guest_mem_unmap(&big);
}

static int group_setup(void **state)
{
	if (!mkdtemp(tmpdir))
		return -1;
	snprintf(kernel_path, sizeof(kernel_path), "%s/vmlinux", tmpdir);
	snprintf(initrd_path, sizeof(initrd_path), "%s/initrd", tmpdir);
	return 0;
}

static int group_teardown(void **state)
{
	return rmdir(tmpdir);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
	    T(test_segments_and_bss),
	    T(test_pvh_note_used_in_auto),
	    T(test_forced_linux64_ignores_note),
	    T(test_forced_pvh_without_note),
	    T(test_initrd_above_segments),
	    T(test_truncated),
	    T(test_phdrs_outside_file),
	    T(test_segment_offset_outside_file),
	    T(test_segment_outside_ram),
	    T(test_filesz_over_memsz),
	    T(test_wrong_machine_or_class),
	    T(test_entry_outside_segments),
	    T(test_malformed_notes),
	    T(test_not_a_kernel),
	    T(test_real_vmlinux),
	};
#undef T

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
