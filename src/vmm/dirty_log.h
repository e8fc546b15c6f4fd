/* Which guest pages were written since the last look: KVM's dirty log (the guest's own writes,
 * per memory slot) ORed with guest_mem's bitmap of what skiff's devices wrote (KVM does not see
 * those). Diff snapshots and live migration's pre-copy read it.
 *
 * A bitmap set is one array per region (vm->mem.regions[i]), one bit per 4 KiB page. Threads:
 * whoever holds the VM (the API thread, the migration thread); one reader at a time: a look
 * clears what it returns. */
#ifndef SKIFF_DIRTY_LOG_H
#define SKIFF_DIRTY_LOG_H

#include <stdbool.h>
#include <stdint.h>

struct vm;

/* Turns logging on for a running VM that was not built with track_dirty_pages (every slot gets
 * KVM_MEM_LOG_DIRTY_PAGES, guest_mem its bitmaps); a no-op when it is on. Everything written
 * before counts as not dirty: the caller copies all memory after this. 0, or -errno with a
 * one-line reason as the thread's last error. */
int dirty_log_start(struct vm *vm);
/* Turns KVM's dirty log off again (a migration that failed, on a VM without track_dirty_pages:
 * write-protecting every page costs the guest). guest_mem's bitmaps stay: devices may be
 * marking. 0, or -errno with a one-line reason as the thread's last error. */
int dirty_log_stop(struct vm *vm);

/* The pages written since the last take (or since logging began), and the count cleared. NULL
 * (with the reason set) on failure, with nothing lost. */
uint64_t **dirty_log_take(struct vm *vm);
/* The same, of one writer only: the guest's writes (KVM's dirty log) or skiff's own (its devices'
 * marks). For a check that tells the two apart; a take of both is what copies use. */
enum dirty_writer { DIRTY_BY_GUEST, DIRTY_BY_VMM };
uint64_t **dirty_log_take_by(struct vm *vm, enum dirty_writer who);
/* Frees a take's bitmaps; with give_back, their pages are marked dirty again (a snapshot or a
 * migration that failed leaves them for the next one). */
void dirty_log_free(struct vm *vm, uint64_t **maps, bool give_back);
/* Marks all of guest memory dirty (the next take returns every page). */
void dirty_log_mark_all(struct vm *vm);

static inline bool dirty_log_test(uint64_t *const *maps, int region, uint64_t page)
{
	return maps[region][page / 64] & (1ULL << (page % 64));
}

#endif
