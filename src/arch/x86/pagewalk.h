/* x86 guest-virtual to guest-physical translation, as the MMU does it: no paging (real and
 * protected mode: the address is physical), 32-bit paging (4 KiB and 4 MiB pages), PAE, and
 * long mode with 4 or 5 levels (4 KiB, 2 MiB and 1 GiB pages). Pure: the page tables are read
 * through a callback, so the unit tests feed it tables in a buffer (tests/unit/test_x86_pagewalk.c). */
#ifndef SKIFF_ARCH_X86_PAGEWALK_H
#define SKIFF_ARCH_X86_PAGEWALK_H

#include <stddef.h>
#include <stdint.h>

struct x86_paging {
	uint64_t cr0, cr3, cr4, efer;
};

/* Reads len bytes of guest-physical memory at gpa: 0 or -EFAULT. */
typedef int (*pagewalk_read_fn)(void *ctx, uint64_t gpa, void *buf, size_t len);

/* 0 with *gpa and *page_size (of the page that maps va), or -EFAULT (not present,
 * non-canonical, a table outside RAM, a reserved large page). */
int x86_pagewalk(const struct x86_paging *p, uint64_t va, pagewalk_read_fn read, void *ctx,
		 uint64_t *gpa, uint64_t *page_size);

#endif
