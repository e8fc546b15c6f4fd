/* Guest physical memory: a few host-mmap'ed regions, and the one checked translation from guest
 * physical addresses to host pointers. Guest memory is untrusted input: every guest address and
 * length is translated here, and nowhere else does code do arithmetic on guest addresses. */
#ifndef SKIFF_GUEST_MEM_H
#define SKIFF_GUEST_MEM_H

#include <stdbool.h>
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
	/* With guest_mem_track_dirty(): per region, one bit per 4 KiB page that skiff itself wrote
	 * (virtio devices filling the guest's buffers and used rings), which KVM's dirty log does
	 * not see; NULL otherwise. */
	uint64_t *dirty[GUEST_MEM_MAX_REGIONS];
	/* guest_mem_map_shared(): each region is a memfd mapped MAP_SHARED, so that another
	 * process (a vhost-user backend) can map the same pages; fds[i] is region i's file. */
	bool shared;
	int fds[GUEST_MEM_MAX_REGIONS];
};

#define GUEST_PAGE_SIZE 4096

/* Map anonymous host memory for each region (gpa, size) in `layout`, 2 MiB-aligned and asking
 * for transparent huge pages (all but the lowest 2 MiB of the first region). Returns 0 or
 * -errno; on failure nothing stays mapped. */
int guest_mem_map(struct guest_mem *mem, const struct guest_region *layout, int nr);
/* The same regions mapped from a file (a snapshot's memory file), one after the other from
 * offset 0, private and copy-on-write: pages are read from the file when the guest first touches
 * them, and the guest's writes never reach the file. The file must hold at least the regions'
 * total size. Returns 0, -EINVAL for a file too short, or -errno. */
int guest_mem_map_file(struct guest_mem *mem, const struct guest_region *layout, int nr, int fd);
/* The same, but each region is a memfd mapped MAP_SHARED (fds[] keeps them open until unmap):
 * what a VM with a vhost-user device needs, whose backend maps guest memory itself. */
int guest_mem_map_shared(struct guest_mem *mem, const struct guest_region *layout, int nr);
void guest_mem_unmap(struct guest_mem *mem);
/* Offer every region to the kernel's same-page merging (KSM: madvise MADV_MERGEABLE), so that
 * identical pages of identical guests are stored once while /sys/kernel/mm/ksm/run is 1; the
 * regions stop asking for huge pages. 0, or -errno (-EINVAL: a kernel without CONFIG_KSM). */
int guest_mem_mergeable(const struct guest_mem *mem);

/* Dirty tracking of skiff's own writes (for Diff snapshots): allocates the bitmaps (0 or
 * -ENOMEM). Marking is lock-free and may come from any thread; a range outside guest memory is
 * ignored. guest_mem_take_dirty ORs region `i`'s bits into `out` (its pages / 64 words,
 * rounded up) and clears them. Without tracking, marking costs one test. */
int guest_mem_track_dirty(struct guest_mem *mem);
void guest_mem_mark_dirty(const struct guest_mem *mem, const void *hva, uint64_t len);
void guest_mem_take_dirty(const struct guest_mem *mem, int i, uint64_t *out);
/* Whether guest_mem_track_dirty() was called: marking is worth a caller's extra work. */
bool guest_mem_tracking(const struct guest_mem *mem);

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
