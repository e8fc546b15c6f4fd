#include "base/guest_mem.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

int guest_mem_map(struct guest_mem *mem, const struct guest_region *layout, int nr)
{
	if (nr <= 0 || nr > GUEST_MEM_MAX_REGIONS)
		return -EINVAL;
	memset(mem, 0, sizeof(*mem));
	for (int i = 0; i < nr; i++) {
		void *p = mmap(NULL, layout[i].size, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
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
	}
	return 0;
}

int guest_mem_mergeable(const struct guest_mem *mem)
{
	for (int i = 0; i < mem->nr_regions; i++)
		if (madvise(mem->regions[i].hva, mem->regions[i].size, MADV_MERGEABLE) < 0)
			return -errno;
	return 0;
}

void guest_mem_unmap(struct guest_mem *mem)
{
	for (int i = 0; i < mem->nr_regions; i++)
		munmap(mem->regions[i].hva, mem->regions[i].size);
	mem->nr_regions = 0;
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
