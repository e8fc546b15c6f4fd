/* arm64 guest-virtual to guest-physical translation at EL1, as the MMU does it for stage 1:
 * SCTLR_EL1.M off means no translation; otherwise TTBR0_EL1 (addresses with bit 55 clear) or
 * TTBR1_EL1 (set), with the sizes (T0SZ/T1SZ), granules (TG0/TG1: 4, 16 or 64 KiB) and walk
 * disables (EPD0/EPD1) of TCR_EL1; table, block and page descriptors, up to 48-bit output
 * addresses. Pure: the tables are read through a callback (tests/unit/test_arm64_pagewalk.c). */
#ifndef SKIFF_ARCH_ARM64_PAGEWALK_H
#define SKIFF_ARCH_ARM64_PAGEWALK_H

#include <stddef.h>
#include <stdint.h>

struct arm64_paging {
	uint64_t sctlr, tcr, ttbr0, ttbr1;
};

/* Reads len bytes of guest-physical memory at gpa: 0 or -EFAULT. */
typedef int (*arm64_pagewalk_read_fn)(void *ctx, uint64_t gpa, void *buf, size_t len);

/* 0 with *gpa and *page_size (the block or page that maps va), or -EFAULT (a fault: invalid
 * descriptor, an address outside both ranges, a disabled walk, a table outside RAM). */
int arm64_pagewalk(const struct arm64_paging *p, uint64_t va, arm64_pagewalk_read_fn read,
		   void *ctx, uint64_t *gpa, uint64_t *page_size);

#endif
