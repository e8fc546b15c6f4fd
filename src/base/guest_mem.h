/* Guest physical memory: a few host-mmap'ed regions, and the one checked translation from guest
 * physical addresses to host pointers. Guest memory is untrusted input: every guest address and
 * length is translated here, and nowhere else does code do arithmetic on guest addresses. */
#ifndef SKIFF_GUEST_MEM_H
#define SKIFF_GUEST_MEM_H

#include <stddef.h>
#include <stdint.h>

#define GUEST_MEM_MAX_REGIONS 4

struct guest_region {
	uint64_t gpa;  /* guest physical start */
	uint64_t size; /* bytes */
	uint8_t *hva;  /* host mapping */
};

struct guest_mem {
	struct guest_region regions[GUEST_MEM_MAX_REGIONS];
	int nr_regions;
};

/* Map anonymous host memory for each region (gpa, size) in `layout`. Returns 0 or -errno; on
 * failure nothing stays mapped. */
int guest_mem_map(struct guest_mem *mem, const struct guest_region *layout, int nr);
void guest_mem_unmap(struct guest_mem *mem);
/* Offer every region to the kernel's same-page merging (KSM: madvise MADV_MERGEABLE), so that
 * identical pages of identical guests are stored once while /sys/kernel/mm/ksm/run is 1. 0, or
 * -errno (-EINVAL: a kernel without CONFIG_KSM). */
int guest_mem_mergeable(const struct guest_mem *mem);

/* Host pointer for [gpa, gpa + len) if the whole range lies inside one region, else NULL.
 * len == 0 is allowed and checks gpa alone. Overflowing ranges return NULL. */
void *guest_mem_ptr(const struct guest_mem *mem, uint64_t gpa, uint64_t len);

/* Copy to/from guest memory; -EFAULT when the range is not entirely guest RAM. */
int guest_mem_write(const struct guest_mem *mem, uint64_t gpa, const void *src, uint64_t len);
int guest_mem_read(const struct guest_mem *mem, uint64_t gpa, void *dst, uint64_t len);

/* Total bytes of RAM, and the end of the highest region (exclusive). */
uint64_t guest_mem_size(const struct guest_mem *mem);
uint64_t guest_mem_end(const struct guest_mem *mem);

#endif
