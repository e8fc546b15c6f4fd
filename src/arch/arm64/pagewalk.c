#include "arch/arm64/pagewalk.h"

#include <errno.h>
#include <stdbool.h>

#define SCTLR_M	  (1ULL << 0)
#define OA_MASK	  0x0000fffffffff000ULL /* output address bits 47:12 */
#define DESC_VALID 1ULL
#define DESC_TABLE 2ULL

/* TG0 and TG1 encode the granule differently. */
static int granule_bits(bool upper, uint64_t tg)
{
	if (!upper)
		return tg == 0 ? 12 : tg == 1 ? 16 : tg == 2 ? 14 : -1;
	return tg == 1 ? 14 : tg == 2 ? 12 : tg == 3 ? 16 : -1;
}

int arm64_pagewalk(const struct arm64_paging *p, uint64_t va, arm64_pagewalk_read_fn read,
		   void *ctx, uint64_t *gpa, uint64_t *page_size)
{
	bool upper = (va >> 55) & 1;
	uint64_t tcr = p->tcr, table, txsz, tg;
	int g, stride, vabits, levels, level;

	if (!(p->sctlr & SCTLR_M)) {
		*gpa = va;
		*page_size = 4096;
		return 0;
	}
	if (upper) {
		txsz = (tcr >> 16) & 0x3f;
		tg = (tcr >> 30) & 3;
		if (tcr & (1ULL << 23)) /* EPD1 */
			return -EFAULT;
		table = p->ttbr1;
	} else {
		txsz = tcr & 0x3f;
		tg = (tcr >> 14) & 3;
		if (tcr & (1ULL << 7)) /* EPD0 */
			return -EFAULT;
		table = p->ttbr0;
	}
	g = granule_bits(upper, tg);
	if (g < 0 || txsz < 16 || txsz > 39)
		return -EFAULT;
	vabits = 64 - (int)txsz;
	/* The bits above the range must all equal bit 55's side: zeros below, ones above. */
	if (upper ? (va >> vabits) != (~0ULL >> vabits) : (va >> vabits) != 0)
		return -EFAULT;
	stride = g - 3;
	levels = (vabits - g + stride - 1) / stride;
	level = 4 - levels;
	table &= 0x0000fffffffffffeULL;
	for (;; level++) {
		int shift = g + stride * (3 - level);
		uint64_t idx = (va & ((vabits == 64 ? 0 : 1ULL << vabits) - 1)) >> shift;
		uint64_t desc;

		if (level != 4 - levels)
			idx &= (1ULL << stride) - 1;
		if (read(ctx, table + idx * 8, &desc, 8) || !(desc & DESC_VALID))
			return -EFAULT;
		if (level == 3) {
			if (!(desc & DESC_TABLE)) /* a block at level 3 is reserved */
				return -EFAULT;
		} else if (desc & DESC_TABLE) {
			table = desc & OA_MASK & ~((1ULL << g) - 1);
			continue;
		} else if (level == 0 || (level == 1 && g != 12)) {
			return -EFAULT; /* no block at this level for this granule */
		}
		{
			uint64_t size = 1ULL << shift;

			*gpa = (desc & OA_MASK & ~(size - 1)) | (va & (size - 1));
			*page_size = size;
			return 0;
		}
	}
}
