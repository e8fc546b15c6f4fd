#include "vmm/dirty_log.h"
#include "base/log.h"
#include "vmm/vm.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

/* Every slot with or without KVM's dirty log. */
static int set_logging(struct vm *vm, bool on)
{
	for (int i = 0; i < vm->mem.nr_regions; i++) {
		const struct guest_region *r = &vm->mem.regions[i];
		struct kvm_userspace_memory_region slot = {
			.slot = (uint32_t)i,
			.flags = on ? KVM_MEM_LOG_DIRTY_PAGES : 0,
			.guest_phys_addr = r->gpa,
			.memory_size = r->size,
			.userspace_addr = (uint64_t)(uintptr_t)r->hva,
		};

		/* Changing only the flags of a slot is what KVM allows for a live VM. */
		if (ioctl(vm->fd, KVM_SET_USER_MEMORY_REGION, &slot) < 0)
			return log_set_error(-errno, "cannot turn %s KVM's dirty log for guest "
						     "0x%llx+0x%llx: %s",
					     on ? "on" : "off", (unsigned long long)r->gpa,
					     (unsigned long long)r->size, strerror(errno));
	}
	return 0;
}

int dirty_log_start(struct vm *vm)
{
	int ret = guest_mem_track_dirty(&vm->mem);

	if (ret)
		return log_set_error(ret, "out of memory for the dirty-page bitmaps");
	return set_logging(vm, true);
}

int dirty_log_stop(struct vm *vm)
{
	return set_logging(vm, false);
}

void dirty_log_free(struct vm *vm, uint64_t **maps, bool give_back)
{
	if (!maps)
		return;
	for (int i = 0; i < vm->mem.nr_regions; i++) {
		for (uint64_t pg = 0; give_back && pg < vm->mem.regions[i].size / GUEST_PAGE_SIZE;
		     pg++)
			if (dirty_log_test(maps, i, pg))
				guest_mem_mark_dirty(&vm->mem,
						     vm->mem.regions[i].hva + pg * GUEST_PAGE_SIZE,
						     GUEST_PAGE_SIZE);
		free(maps[i]);
	}
	free(maps);
}

void dirty_log_mark_all(struct vm *vm)
{
	for (int i = 0; i < vm->mem.nr_regions; i++)
		guest_mem_mark_dirty(&vm->mem, vm->mem.regions[i].hva, vm->mem.regions[i].size);
}

static uint64_t **take(struct vm *vm, bool guest, bool own)
{
	uint64_t **maps = calloc(GUEST_MEM_MAX_REGIONS, sizeof(*maps));

	if (!maps) {
		log_set_error(-ENOMEM, "out of memory for the dirty-page bitmaps");
		return NULL;
	}
	for (int i = 0; i < vm->mem.nr_regions; i++) {
		uint64_t pages = vm->mem.regions[i].size / GUEST_PAGE_SIZE;

		maps[i] = calloc((pages + 63) / 64 + 1, sizeof(uint64_t));
		if (!maps[i])
			goto fail;
	}
	for (int i = 0; i < vm->mem.nr_regions; i++) {
		struct kvm_dirty_log log = {.slot = (uint32_t)i, .dirty_bitmap = maps[i]};

		if (guest && ioctl(vm->fd, KVM_GET_DIRTY_LOG, &log) < 0) {
			log_set_error(-errno, "KVM_GET_DIRTY_LOG: %s", strerror(errno));
			goto fail_restore;
		}
		if (own)
			guest_mem_take_dirty(&vm->mem, i, maps[i]);
	}
	return maps;
fail_restore:
	/* What was taken already must not be lost: marked again, as skiff's own writes. */
	dirty_log_free(vm, maps, true);
	return NULL;
fail:
	dirty_log_free(vm, maps, false);
	log_set_error(-ENOMEM, "out of memory for the dirty-page bitmaps");
	return NULL;
}

uint64_t **dirty_log_take(struct vm *vm)
{
	return take(vm, true, true);
}

uint64_t **dirty_log_take_by(struct vm *vm, enum dirty_writer who)
{
	return take(vm, who == DIRTY_BY_GUEST, who == DIRTY_BY_VMM);
}
