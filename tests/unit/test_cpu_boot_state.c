/* The boot vCPU state without /dev/kvm: GDT descriptor encoding, the identity page tables, and the
 * sregs/regs/fpu each entry mode gets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "arch/x86/boot.h"
#include "arch/x86/layout.h"
#include "base/guest_mem.h"

#define MiB (1ULL << 20)

/* What KVM_GET_SREGS returns for a fresh vCPU (the architectural reset state). */
static struct kvm_sregs reset_sregs(void)
{
	struct kvm_sregs s;
	struct kvm_segment data = {
	    .limit = 0xffff,
	    .type = 3,
	    .present = 1,
	    .s = 1,
	};

	memset(&s, 0, sizeof(s));
	s.cs = data;
	s.cs.type = 0xb;
	s.cs.selector = 0xf000;
	s.cs.base = 0xffff0000;
	s.ds = s.es = s.fs = s.gs = s.ss = data;
	s.tr = (struct kvm_segment){.limit = 0xffff, .type = 0xb, .present = 1};
	s.ldt = (struct kvm_segment){.limit = 0xffff, .type = 2, .present = 1};
	s.gdt.limit = s.idt.limit = 0xffff;
	s.cr0 = 0x60000010;
	s.apic_base = 0xfee00900;
	return s;
}

static struct guest_mem mem;

static int setup(void **state)
{
	struct guest_region r = {.gpa = 0, .size = 16 * MiB};

	if (guest_mem_map(&mem, &r, 1) < 0)
		return -1;
	memset(guest_mem_ptr(&mem, 0, 16 * MiB), 0xaa, 16 * MiB);
	return 0;
}

static int teardown(void **state)
{
	guest_mem_unmap(&mem);
	return 0;
}

static void assert_segment_equal(const struct kvm_segment *a, const struct kvm_segment *b)
{
	assert_int_equal(a->base, b->base);
	assert_int_equal(a->limit, b->limit);
	assert_int_equal(a->selector, b->selector);
	assert_int_equal(a->type, b->type);
	assert_int_equal(a->present, b->present);
	assert_int_equal(a->dpl, b->dpl);
	assert_int_equal(a->db, b->db);
	assert_int_equal(a->s, b->s);
	assert_int_equal(a->l, b->l);
	assert_int_equal(a->g, b->g);
	assert_int_equal(a->avl, b->avl);
}

static void test_gdt_known_encodings(void **state)
{
	struct kvm_segment code64 = {
	    .limit = 0xffffffff, .type = 0xb, .present = 1, .s = 1, .l = 1, .g = 1};
	struct kvm_segment code32 = {
	    .limit = 0xffffffff, .type = 0xb, .present = 1, .s = 1, .db = 1, .g = 1};
	struct kvm_segment data = {
	    .limit = 0xffffffff, .type = 0x3, .present = 1, .s = 1, .db = 1, .g = 1};
	struct kvm_segment tss = {.base = 0x12345678, .limit = 0x67, .type = 0xb, .present = 1};

	/* The descriptors every x86 boot loader writes, as published in the SDM's layout. */
	assert_int_equal(x86_gdt_entry_from_segment(&code64), 0x00af9b000000ffffULL);
	assert_int_equal(x86_gdt_entry_from_segment(&code32), 0x00cf9b000000ffffULL);
	assert_int_equal(x86_gdt_entry_from_segment(&data), 0x00cf93000000ffffULL);
	assert_int_equal(x86_gdt_entry_from_segment(&tss), 0x12008b3456780067ULL);
}

static void test_gdt_round_trip(void **state)
{
	const struct kvm_segment segs[] = {
	    {.limit = 0xffffffff, .type = 0xb, .present = 1, .s = 1, .l = 1, .g = 1},
	    {.limit = 0xffffffff, .type = 0x3, .present = 1, .s = 1, .db = 1, .g = 1},
	    {.base = 0xfedcba98, .limit = 0xabcde, .type = 0x9, .present = 1, .dpl = 3},
	    {.base = 0x00100000,
	     .limit = 0x0001ffff,
	     .type = 0x2,
	     .present = 1,
	     .s = 1,
	     .avl = 1,
	     .dpl = 2},
	    {.base = 0x1000,
	     .limit = 0x7fffffff & ~0xfffu,
	     .type = 0xa,
	     .present = 1,
	     .s = 1,
	     .g = 1,
	     .db = 1},
	};

	for (size_t i = 0; i < sizeof(segs) / sizeof(segs[0]); i++) {
		struct kvm_segment s = segs[i], back;

		s.selector = (uint16_t)(i * 8);
		if (s.g)
			s.limit |= 0xfff; /* page-granular limits always end in 0xfff */
		x86_segment_from_gdt_entry(x86_gdt_entry_from_segment(&s), s.selector, &back);
		assert_segment_equal(&back, &s);
		assert_int_equal(back.unusable, 0);
	}
	struct kvm_segment absent;

	x86_segment_from_gdt_entry(0, 0, &absent);
	assert_int_equal(absent.present, 0);
	assert_int_equal(absent.unusable, 1);
}

static uint64_t read_u64(uint64_t gpa)
{
	uint64_t v;

	assert_int_equal(guest_mem_read(&mem, gpa, &v, sizeof(v)), 0);
	return v;
}

static void test_long64(void **state)
{
	struct x86_boot_info boot = {
	    .mode = X86_ENTRY_LONG64,
	    .entry = 0x100200,
	    .boot_arg = X86_BOOT_PARAMS_ADDR,
	    .stack = X86_BOOT_STACK_ADDR,
	    .format = "bzImage",
	};
	struct kvm_sregs s = reset_sregs();
	struct kvm_regs r;
	struct kvm_fpu f;
	struct kvm_segment from_gdt;

	assert_int_equal(x86_build_boot_cpu_state(&mem, &boot, &s, &r, &f), 0);

	/* Identity map of 0..4 GiB with 2 MiB pages. */
	assert_int_equal(read_u64(X86_PML4_ADDR), X86_PDPT_ADDR | 0x3);
	for (int i = 1; i < 512; i++)
		assert_int_equal(read_u64(X86_PML4_ADDR + i * 8), 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(read_u64(X86_PDPT_ADDR + i * 8), (X86_PD_ADDR + i * 4096) | 0x3);
	for (int i = 4; i < 512; i++)
		assert_int_equal(read_u64(X86_PDPT_ADDR + i * 8), 0);
	for (uint64_t i = 0; i < 4 * 512; i++)
		assert_int_equal(read_u64(X86_PD_ADDR + i * 8), (i << 21) | 0x83);

	assert_true(s.cr0 & 1);		  /* PE */
	assert_true(s.cr0 & (1u << 31));  /* PG */
	assert_true(s.cr0 & (1u << 5));	  /* NE */
	assert_false(s.cr0 & (3u << 29)); /* caches on: CD and NW clear */
	assert_int_equal(s.cr3, X86_PML4_ADDR);
	assert_true(s.cr4 & (1u << 5));		   /* PAE */
	assert_int_equal(s.efer & 0x500, 0x500);   /* LME | LMA */
	assert_int_equal(s.apic_base, 0xfee00900); /* left as KVM had it */

	assert_int_equal(s.cs.selector, 0x10);
	assert_int_equal(s.cs.l, 1);
	assert_int_equal(s.cs.db, 0);
	assert_int_equal(s.cs.base, 0);
	assert_int_equal(s.ds.selector, 0x18);
	assert_int_equal(s.ss.selector, 0x18);
	assert_int_equal(s.es.selector, 0x18);
	assert_int_equal(s.ds.limit, 0xffffffff);
	assert_int_equal(s.tr.type, 0xb);
	assert_int_equal(s.tr.s, 0);
	assert_int_equal(s.gdt.base, X86_GDT_ADDR);
	assert_true(s.gdt.limit >= 0x27);

	/* The GDT in memory says what the cached segments say, so a reload changes nothing. */
	x86_segment_from_gdt_entry(read_u64(X86_GDT_ADDR + 0x10), 0x10, &from_gdt);
	assert_segment_equal(&from_gdt, &s.cs);
	x86_segment_from_gdt_entry(read_u64(X86_GDT_ADDR + 0x18), 0x18, &from_gdt);
	assert_segment_equal(&from_gdt, &s.ds);
	x86_segment_from_gdt_entry(read_u64(X86_GDT_ADDR + 0x20), 0x20, &from_gdt);
	assert_segment_equal(&from_gdt, &s.tr);
	assert_int_equal(read_u64(X86_GDT_ADDR), 0);
	assert_int_equal(read_u64(X86_GDT_ADDR + 0x28), 0); /* TSS high half */

	assert_int_equal(r.rip, 0x100200);
	assert_int_equal(r.rsi, X86_BOOT_PARAMS_ADDR);
	assert_int_equal(r.rsp, X86_BOOT_STACK_ADDR);
	assert_int_equal(r.rflags, 0x2);
	assert_int_equal(r.rbx, 0);
	assert_int_equal(f.fcw, 0x37f);
	assert_int_equal(f.mxcsr, 0x1f80);
}

static void test_pvh32(void **state)
{
	struct x86_boot_info boot = {
	    .mode = X86_ENTRY_PVH32,
	    .entry = 0x1000850,
	    .boot_arg = X86_PVH_INFO_ADDR,
	    .stack = X86_BOOT_STACK_ADDR,
	};
	struct kvm_sregs s = reset_sregs();
	struct kvm_regs r;
	struct kvm_fpu f;
	struct kvm_segment from_gdt;

	assert_int_equal(x86_build_boot_cpu_state(&mem, &boot, &s, &r, &f), 0);
	assert_int_equal(s.cr0 & 1, 1);
	assert_false(s.cr0 & (1u << 31));
	assert_false(s.cr0 & (3u << 29));
	assert_int_equal(s.cr4, 0);
	assert_int_equal(s.efer, 0);
	assert_int_equal(s.cs.db, 1);
	assert_int_equal(s.cs.l, 0);
	assert_int_equal(s.cs.base, 0);
	assert_int_equal(s.cs.limit, 0xffffffff);
	assert_int_equal(s.cs.type, 0xb);
	assert_int_equal(s.ds.type, 0x3);
	assert_int_equal(s.ss.limit, 0xffffffff);
	assert_int_equal(s.tr.base, 0);
	assert_int_equal(s.tr.limit, 0x67);
	x86_segment_from_gdt_entry(read_u64(X86_GDT_ADDR + s.cs.selector), s.cs.selector,
				   &from_gdt);
	assert_segment_equal(&from_gdt, &s.cs);
	assert_int_equal(r.rip, 0x1000850);
	assert_int_equal(r.rbx, X86_PVH_INFO_ADDR);
	assert_int_equal(r.rsi, 0);
	assert_false(r.rflags & (1u << 9)); /* IF */
	assert_int_equal(f.fcw, 0x37f);
	/* No page tables needed, none written. */
	assert_int_equal(read_u64(X86_PML4_ADDR), 0xaaaaaaaaaaaaaaaaULL);
}

static void test_real16(void **state)
{
	struct x86_boot_info boot = {
	    .mode = X86_ENTRY_REAL16,
	    .entry = X86_RAW_LOAD_ADDR,
	    .stack = X86_RAW_STACK_ADDR,
	};
	struct kvm_sregs s = reset_sregs();
	struct kvm_regs r;
	struct kvm_fpu f;

	assert_int_equal(x86_build_boot_cpu_state(&mem, &boot, &s, &r, &f), 0);
	assert_int_equal(s.cs.selector, 0);
	assert_int_equal(s.cs.base, 0);
	assert_int_equal(s.cs.limit, 0xffff);
	assert_int_equal(s.ss.base, 0);
	assert_int_equal(s.ds.selector, 0);
	assert_int_equal(s.cr0 & 1, 0);
	assert_int_equal(s.efer, 0);
	assert_int_equal(r.rip, X86_RAW_LOAD_ADDR);
	assert_int_equal(r.rsp, X86_RAW_STACK_ADDR);
	assert_int_equal(r.rflags, 0x2);
	assert_int_equal(f.mxcsr, 0x1f80);

	boot.entry = 0x10000; /* not reachable with CS = 0 */
	assert_int_equal(x86_build_boot_cpu_state(&mem, &boot, &s, &r, &f), -EINVAL);
}

static void test_no_ram_for_tables(void **state)
{
	struct guest_mem high;
	struct guest_region r = {.gpa = 4ULL << 30, .size = 2 * MiB};
	struct x86_boot_info boot = {.mode = X86_ENTRY_LONG64, .entry = 0x100200};
	struct kvm_sregs s = reset_sregs();
	struct kvm_regs regs;
	struct kvm_fpu f;

	assert_int_equal(guest_mem_map(&high, &r, 1), 0);
	assert_int_equal(x86_build_boot_cpu_state(&high, &boot, &s, &regs, &f), -EFAULT);
	guest_mem_unmap(&high);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_gdt_known_encodings),
	    cmocka_unit_test(test_gdt_round_trip),
	    cmocka_unit_test_setup_teardown(test_long64, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pvh32, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_real16, setup, teardown),
	    cmocka_unit_test(test_no_ram_for_tables),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
