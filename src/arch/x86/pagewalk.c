#include "arch/x86/pagewalk.h"

#include <errno.h>

#define CR0_PG	  (1ULL << 31)
#define CR4_PSE	  (1ULL << 4)
#define CR4_PAE	  (1ULL << 5)
#define CR4_LA57  (1ULL << 12)
#define EFER_LMA  (1ULL << 10)
#define PTE_P	  (1ULL << 0)
#define PTE_PS	  (1ULL << 7)
#define ADDR_MASK 0x000ffffffffff000ULL

static int read_entry(pagewalk_read_fn read, void *ctx, uint64_t gpa, size_t size,
		      uint64_t *out)
{
	uint64_t v = 0;

	if (read(ctx, gpa, &v, size))
		return -EFAULT;
	*out = v; /* little-endian host and guest */
	return 0;
}

static int walk_32bit(const struct x86_paging *p, uint64_t va, pagewalk_read_fn read, void *ctx,
		      uint64_t *gpa, uint64_t *page_size)
{
	uint64_t pde, pte;

	va &= 0xffffffffULL;
	if (read_entry(read, ctx, (p->cr3 & 0xfffff000ULL) + ((va >> 22) << 2), 4, &pde) ||
	    !(pde & PTE_P))
		return -EFAULT;
	if ((pde & PTE_PS) && (p->cr4 & CR4_PSE)) {
		/* PSE-36: bits 13-20 of the entry are bits 32-39 of the address. */
		*gpa = (pde & 0xffc00000ULL) | ((pde >> 13) & 0xffULL) << 32 | (va & 0x3fffff);
		*page_size = 1ULL << 22;
		return 0;
	}
	if (read_entry(read, ctx, (pde & 0xfffff000ULL) + (((va >> 12) & 0x3ff) << 2), 4, &pte) ||
	    !(pte & PTE_P))
		return -EFAULT;
	*gpa = (pte & 0xfffff000ULL) | (va & 0xfff);
	*page_size = 4096;
	return 0;
}

int x86_pagewalk(const struct x86_paging *p, uint64_t va, pagewalk_read_fn read, void *ctx,
		 uint64_t *gpa, uint64_t *page_size)
{
	uint64_t table, entry;
	int levels, shift;

	if (!(p->cr0 & CR0_PG)) {
		*gpa = va;
		*page_size = 4096;
		return 0;
	}
	if (!(p->cr4 & CR4_PAE))
		return walk_32bit(p, va, read, ctx, gpa, page_size);
	if (p->efer & EFER_LMA) {
		int bits = (p->cr4 & CR4_LA57) ? 57 : 48;
		int64_t sx = (int64_t)(va << (64 - bits)) >> (64 - bits);

		if ((uint64_t)sx != va)
			return -EFAULT; /* non-canonical */
		levels = bits == 57 ? 5 : 4;
		table = p->cr3 & ADDR_MASK;
	} else {
		/* PAE: four PDPTEs at cr3 (32-byte aligned), then two levels. */
		va &= 0xffffffffULL;
		if (read_entry(read, ctx, (p->cr3 & 0xffffffe0ULL) + ((va >> 30) << 3), 8, &entry) ||
		    !(entry & PTE_P))
			return -EFAULT;
		table = entry & ADDR_MASK;
		levels = 2;
	}
	for (int level = levels; level >= 1; level--) {
		shift = 12 + 9 * (level - 1);
		if (read_entry(read, ctx, table + (((va >> shift) & 0x1ff) << 3), 8, &entry) ||
		    !(entry & PTE_P))
			return -EFAULT;
		if (level == 1 || ((entry & PTE_PS) && level <= 3)) {
			uint64_t size = 1ULL << shift;

			/* A large page at level 4 or 5 does not exist: PS there is reserved. */
			*gpa = (entry & ADDR_MASK & ~(size - 1)) | (va & (size - 1));
			*page_size = size;
			return 0;
		}
		if ((entry & PTE_PS) && level > 3)
			return -EFAULT;
		table = entry & ADDR_MASK;
	}
	return -EFAULT;
}
