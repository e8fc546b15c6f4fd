#include "base/guest_mem.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Anonymous private guest RAM asks for transparent huge pages (MADV_HUGEPAGE: Debian's THP mode,
 * "madvise", gives them only to memory that asks, as QEMU's and kvmtool's RAM does): the guest's
 * memory then sits in 2 MiB host pages, one fault and one TLB entry where 512 were. In the nested
 * harness an uncompressed Linux reached its boot timer in 2.8 s instead of 4.1 (docs/memory.md).
 * The mapping is 2 MiB-aligned so that every 2 MiB of the guest can be one page. The lowest
 * 2 MiB of guest RAM stay small pages: bare-metal guests and the boot structures live there,
 * touching a few pages, which need not cost 2 MiB each. KSM (guest_mem_mergeable) merges small
 * pages only, so mergeable memory gives the advice back. */
#define THP_SIZE (2ULL << 20)

static void *map_anonymous(uint64_t size)
{
	uint8_t *raw, *start;
	uint64_t len = size + THP_SIZE;

	raw = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
		   -1, 0);
	if (raw == MAP_FAILED)
		return MAP_FAILED;
	start = (uint8_t *)(((uintptr_t)raw + THP_SIZE - 1) & ~(uintptr_t)(THP_SIZE - 1));
	if (start > raw)
		munmap(raw, (size_t)(start - raw));
	if (raw + len > start + size)
		munmap(start + size, (size_t)(raw + len - (start + size)));
	return start;
}

/* The advice for region i (see above); failing it (a kernel without THP) changes nothing else. */
static void advise_huge(const struct guest_region *r, int i)
{
	uint64_t skip = i == 0 ? THP_SIZE : 0;

	if (r->size > skip)
		madvise(r->hva + skip, r->size - skip, MADV_HUGEPAGE);
}

/* Region i's memory: anonymous and private; with a file, that file's pages from `offset`,
 * private and copy-on-write; shared, a memfd of its size mapped shared. */
static void *map_region(struct guest_mem *mem, int i, uint64_t size, int file, uint64_t offset)
{
	void *p;
	int fd;

	if (file >= 0)
		return mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_NORESERVE, file,
			    (off_t)offset);
	if (!mem->shared)
		return map_anonymous(size);
	fd = memfd_create("skiff-guest-ram", MFD_CLOEXEC);
	if (fd < 0)
		return MAP_FAILED;
	if (ftruncate(fd, (off_t)size) < 0) {
		int err = errno;

		close(fd);
		errno = err;
		return MAP_FAILED;
	}
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0);
	if (p == MAP_FAILED) {
		int err = errno;

		close(fd);
		errno = err;
		return MAP_FAILED;
	}
	mem->fds[i] = fd;
	return p;
}

/* file < 0: anonymous (or, shared, memfd) memory. */
static int map_all(struct guest_mem *mem, const struct guest_region *layout, int nr, bool shared,
		   int file)
{
	uint64_t offset = 0;

	if (nr <= 0 || nr > GUEST_MEM_MAX_REGIONS)
		return -EINVAL;
	memset(mem, 0, sizeof(*mem));
	mem->shared = shared;
	for (int i = 0; i < GUEST_MEM_MAX_REGIONS; i++)
		mem->fds[i] = -1;
	if (file >= 0) {
		struct stat st;
		uint64_t total = 0;

		for (int i = 0; i < nr; i++)
			total += layout[i].size;
		if (fstat(file, &st) < 0)
			return -errno;
		if ((uint64_t)st.st_size < total)
			return -EINVAL;
	}
	for (int i = 0; i < nr; i++) {
		void *p = map_region(mem, i, layout[i].size, file, offset);

		if (p == MAP_FAILED) {
			int err = -errno;
			guest_mem_unmap(mem);
			return err;
		}
		/* Guest memory is never part of a core dump of the VMM. */
		madvise(p, layout[i].size, MADV_DONTDUMP);
		mem->regions[i] = layout[i];
		mem->regions[i].hva = p;
		mem->nr_regions = i + 1;
		if (file < 0 && !shared)
			advise_huge(&mem->regions[i], i);
		offset += layout[i].size;
	}
	return 0;
}

int guest_mem_map(struct guest_mem *mem, const struct guest_region *layout, int nr)
{
	return map_all(mem, layout, nr, false, -1);
}

int guest_mem_map_shared(struct guest_mem *mem, const struct guest_region *layout, int nr)
{
	return map_all(mem, layout, nr, true, -1);
}

int guest_mem_map_file(struct guest_mem *mem, const struct guest_region *layout, int nr, int fd)
{
	return map_all(mem, layout, nr, false, fd);
}

int guest_mem_mergeable(const struct guest_mem *mem)
{
	for (int i = 0; i < mem->nr_regions; i++) {
		/* KSM merges small pages; khugepaged would keep gathering them into huge ones. */
		madvise(mem->regions[i].hva, mem->regions[i].size, MADV_NOHUGEPAGE);
		if (madvise(mem->regions[i].hva, mem->regions[i].size, MADV_MERGEABLE) < 0)
			return -errno;
	}
	return 0;
}

void guest_mem_unmap(struct guest_mem *mem)
{
	for (int i = 0; i < mem->nr_regions; i++) {
		munmap(mem->regions[i].hva, mem->regions[i].size);
		free(mem->dirty[i]);
		mem->dirty[i] = NULL;
	}
	for (int i = 0; mem->shared && i < GUEST_MEM_MAX_REGIONS; i++) {
		if (mem->fds[i] >= 0)
			close(mem->fds[i]);
		mem->fds[i] = -1;
	}
	mem->nr_regions = 0;
}

static uint64_t bitmap_words(uint64_t size)
{
	uint64_t pages = (size + GUEST_PAGE_SIZE - 1) / GUEST_PAGE_SIZE;

	return (pages + 63) / 64;
}

int guest_mem_track_dirty(struct guest_mem *mem)
{
	uint64_t *maps[GUEST_MEM_MAX_REGIONS] = {0};

	if (__atomic_load_n(&mem->dirty[0], __ATOMIC_ACQUIRE))
		return 0;
	for (int i = 0; i < mem->nr_regions; i++) {
		maps[i] = calloc(bitmap_words(mem->regions[i].size), sizeof(uint64_t));
		if (!maps[i]) {
			for (int j = 0; j < i; j++)
				free(maps[j]);
			return -ENOMEM;
		}
	}
	/* Devices may be marking already (a running VM that a migration starts logging): region
	 * 0's bitmap, which markers test first, is published last. */
	for (int i = mem->nr_regions - 1; i >= 0; i--)
		__atomic_store_n(&mem->dirty[i], maps[i], __ATOMIC_RELEASE);
	return 0;
}

void guest_mem_mark_dirty(const struct guest_mem *mem, const void *hva, uint64_t len)
{
	const uint8_t *p = hva;

	if (!__atomic_load_n(&mem->dirty[0], __ATOMIC_ACQUIRE) || len == 0)
		return;
	for (int i = 0; i < mem->nr_regions; i++) {
		const struct guest_region *r = &mem->regions[i];
		uint64_t first, last;

		if (p < r->hva || (uint64_t)(p - r->hva) >= r->size)
			continue;
		first = (uint64_t)(p - r->hva) / GUEST_PAGE_SIZE;
		last = len > r->size - (uint64_t)(p - r->hva)
			       ? (r->size - 1) / GUEST_PAGE_SIZE
			       : ((uint64_t)(p - r->hva) + len - 1) / GUEST_PAGE_SIZE;
		for (uint64_t pg = first; pg <= last; pg++)
			__atomic_fetch_or(&mem->dirty[i][pg / 64], 1ULL << (pg % 64),
					  __ATOMIC_RELAXED);
		return;
	}
}

bool guest_mem_tracking(const struct guest_mem *mem)
{
	return __atomic_load_n(&mem->dirty[0], __ATOMIC_ACQUIRE) != NULL;
}

void guest_mem_take_dirty(const struct guest_mem *mem, int i, uint64_t *out)
{
	if (i < 0 || i >= mem->nr_regions || !mem->dirty[i])
		return;
	for (uint64_t w = 0; w < bitmap_words(mem->regions[i].size); w++)
		out[w] |= __atomic_exchange_n(&mem->dirty[i][w], 0, __ATOMIC_RELAXED);
}

void *guest_mem_ptr(const struct guest_mem *mem, uint64_t gpa, uint64_t len)
{
	for (int i = 0; i < mem->nr_regions; i++) {
		const struct guest_region *r = &mem->regions[i];
		uint64_t off;

		if (gpa < r->gpa || gpa - r->gpa >= r->size)
			continue;
		off = gpa - r->gpa;
		if (len > r->size - off)
			return NULL;
		return r->hva + off;
	}
	return NULL;
}

int guest_mem_write(const struct guest_mem *mem, uint64_t gpa, const void *src, uint64_t len)
{
	void *dst = guest_mem_ptr(mem, gpa, len);

	if (!dst)
		return -EFAULT;
	memcpy(dst, src, len);
	return 0;
}

int guest_mem_read(const struct guest_mem *mem, uint64_t gpa, void *dst, uint64_t len)
{
	const void *src = guest_mem_ptr(mem, gpa, len);

	if (!src)
		return -EFAULT;
	memcpy(dst, src, len);
	return 0;
}

uint64_t guest_mem_size(const struct guest_mem *mem)
{
	uint64_t total = 0;

	for (int i = 0; i < mem->nr_regions; i++)
		total += mem->regions[i].size;
	return total;
}

uint64_t guest_mem_end(const struct guest_mem *mem)
{
	uint64_t end = 0;

	for (int i = 0; i < mem->nr_regions; i++)
		if (mem->regions[i].gpa + mem->regions[i].size > end)
			end = mem->regions[i].gpa + mem->regions[i].size;
	return end;
}
