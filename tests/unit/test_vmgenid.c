/* The VMGenID device: a fresh random ID in guest memory when built to boot and none when built
 * to be restored; save and restore carry its address and GSI; every restore writes a new ID at
 * the saved address (marked dirty for Diff snapshots) and pulses the line once, edge up then
 * down; a section naming an address outside guest RAM or another GSI is refused with guest
 * memory and the line untouched. */
#include "devices/vmgenid.h"
#include "base/device.h"
#include "base/state.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define MEM_SIZE 0x20000
#define ID_ADDR	 0xfe00 /* inside MEM_SIZE */
#define GSI	 9

static const uint8_t zeros[VMGENID_SIZE];

struct fixture {
	struct guest_mem mem;
	struct irq_line line;
	int raised, lowered;
	bool level;
};

static void record_level(void *ctx, uint32_t gsi, bool level)
{
	struct fixture *f = ctx;

	assert_int_equal(gsi, GSI);
	/* Each change is a change: up only from down, down only from up. */
	assert_true(level != f->level);
	f->level = level;
	if (level)
		f->raised++;
	else
		f->lowered++;
}

static int setup(void **state)
{
	const struct guest_region layout[] = {{.gpa = 0, .size = MEM_SIZE}};
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	assert_int_equal(guest_mem_map(&f->mem, layout, 1), 0);
	f->line = (struct irq_line){.set_level = record_level, .ctx = f, .gsi = GSI};
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	guest_mem_unmap(&f->mem);
	free(f);
	return 0;
}

static const uint8_t *id_at(struct fixture *f, uint64_t gpa)
{
	return guest_mem_ptr(&f->mem, gpa, VMGENID_SIZE);
}

static void destroy(struct vmgenid *g)
{
	struct vm_device *dev = vmgenid_device(g);

	assert_int_equal(dev->kind, VM_DEVICE_VMGENID);
	dev->ops->destroy(dev);
}

static void save(struct vmgenid *g, struct state_writer *w)
{
	state_writer_init(w);
	assert_int_equal(vm_device_save(vmgenid_device(g), w), 0);
}

static void test_fresh_id_at_boot_none_for_restore(void **state)
{
	struct fixture *f = *state;
	struct vmgenid *a, *b;
	uint8_t first[VMGENID_SIZE];

	a = vmgenid_create(&f->mem, ID_ADDR, &f->line, true);
	assert_non_null(a);
	assert_int_equal(vmgenid_addr(a), ID_ADDR);
	assert_memory_not_equal(id_at(f, ID_ADDR), zeros, VMGENID_SIZE);
	memcpy(first, id_at(f, ID_ADDR), VMGENID_SIZE);
	/* Booting needs no notify: the driver reads the ID when it binds. */
	assert_int_equal(f->raised, 0);
	destroy(a);

	/* Two VMs built to boot get two IDs. */
	a = vmgenid_create(&f->mem, ID_ADDR, &f->line, true);
	assert_non_null(a);
	assert_memory_not_equal(id_at(f, ID_ADDR), first, VMGENID_SIZE);
	destroy(a);

	/* Built for a restore: guest memory is the snapshot's, left alone until the restore. */
	memset(guest_mem_ptr(&f->mem, ID_ADDR, VMGENID_SIZE), 0, VMGENID_SIZE);
	b = vmgenid_create(&f->mem, ID_ADDR, &f->line, false);
	assert_non_null(b);
	assert_memory_equal(id_at(f, ID_ADDR), zeros, VMGENID_SIZE);
	destroy(b);

	/* An address not in guest RAM (or straddling its end) is no device. */
	assert_null(vmgenid_create(&f->mem, MEM_SIZE, &f->line, true));
	assert_null(vmgenid_create(&f->mem, MEM_SIZE - 8, &f->line, true));
}

static void test_restore_writes_new_id_and_notifies(void **state)
{
	struct fixture *f = *state;
	struct vmgenid *src, *dst;
	struct state_writer w;
	struct state_reader r;
	uint8_t before[VMGENID_SIZE], after[VMGENID_SIZE];
	const uint64_t saved_at = 0x3000;
	uint64_t dirty[(MEM_SIZE / GUEST_PAGE_SIZE + 63) / 64] = {0};

	/* The saved VM had its ID elsewhere (an older layout): the restored one uses that place. */
	src = vmgenid_create(&f->mem, saved_at, &f->line, true);
	assert_non_null(src);
	memcpy(before, id_at(f, saved_at), VMGENID_SIZE);
	save(src, &w);
	destroy(src);

	assert_int_equal(guest_mem_track_dirty(&f->mem), 0);
	guest_mem_take_dirty(&f->mem, 0, dirty);
	memset(dirty, 0, sizeof(dirty));
	dst = vmgenid_create(&f->mem, ID_ADDR, &f->line, false);
	assert_non_null(dst);
	state_reader_init(&r, w.buf, w.len);
	assert_int_equal(vm_device_restore(vmgenid_device(dst), &r), 0);
	assert_true(state_reader_at_end(&r));
	assert_int_equal(vmgenid_addr(dst), saved_at);
	memcpy(after, id_at(f, saved_at), VMGENID_SIZE);
	assert_memory_not_equal(after, before, VMGENID_SIZE);
	assert_memory_not_equal(after, zeros, VMGENID_SIZE);
	assert_int_equal(f->raised, 1);
	assert_int_equal(f->lowered, 1);
	/* skiff's write is in the dirty pages a Diff snapshot takes. */
	guest_mem_take_dirty(&f->mem, 0, dirty);
	assert_true(dirty[0] & (1ULL << (saved_at / GUEST_PAGE_SIZE)));

	/* Every load is a new clone: the same state loaded again gives yet another ID. */
	state_reader_init(&r, w.buf, w.len);
	assert_int_equal(vm_device_restore(vmgenid_device(dst), &r), 0);
	assert_memory_not_equal(id_at(f, saved_at), after, VMGENID_SIZE);
	assert_int_equal(f->raised, 2);
	assert_int_equal(f->lowered, 2);

	/* And it saves where it is now. */
	state_writer_free(&w);
	save(dst, &w);
	destroy(dst);
	dst = vmgenid_create(&f->mem, ID_ADDR, &f->line, false);
	state_reader_init(&r, w.buf, w.len);
	assert_int_equal(vm_device_restore(vmgenid_device(dst), &r), 0);
	assert_int_equal(vmgenid_addr(dst), saved_at);
	destroy(dst);
	state_writer_free(&w);
}

/* A section written by hand: version 1, u64 address, u32 GSI. */
static void section(struct state_writer *w, uint64_t gpa, uint32_t gsi)
{
	state_writer_init(w);
	state_begin(w, VM_DEVICE_VMGENID, 1);
	state_put_u64(w, gpa);
	state_put_u32(w, gsi);
	state_end(w);
	assert_int_equal(state_writer_status(w), 0);
}

static void test_restore_refuses_bad_sections(void **state)
{
	struct fixture *f = *state;
	struct vmgenid *g = vmgenid_create(&f->mem, ID_ADDR, &f->line, false);
	struct state_writer w;
	struct state_reader r;
	uint8_t mem_before[MEM_SIZE];
	const struct {
		uint64_t gpa;
		uint32_t gsi;
	} bad[] = {
	    {MEM_SIZE, GSI},	   /* past guest RAM */
	    {MEM_SIZE - 8, GSI},   /* straddling its end */
	    {UINT64_MAX - 7, GSI}, /* wrapping */
	    {ID_ADDR, GSI + 1},	   /* another interrupt than this build's */
	};

	assert_non_null(g);
	memcpy(mem_before, guest_mem_ptr(&f->mem, 0, MEM_SIZE), MEM_SIZE);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		section(&w, bad[i].gpa, bad[i].gsi);
		state_reader_init(&r, w.buf, w.len);
		assert_int_equal(vm_device_restore(vmgenid_device(g), &r), -EBADMSG);
		assert_non_null(strstr(state_reader_error(&r), "vmgenid"));
		state_writer_free(&w);
	}
	/* Truncated: the GSI is missing. */
	state_writer_init(&w);
	state_begin(&w, VM_DEVICE_VMGENID, 1);
	state_put_u64(&w, ID_ADDR);
	state_end(&w);
	state_reader_init(&r, w.buf, w.len);
	assert_int_equal(vm_device_restore(vmgenid_device(g), &r), -EBADMSG);
	state_writer_free(&w);
	/* A version from the future. */
	state_writer_init(&w);
	state_begin(&w, VM_DEVICE_VMGENID, 2);
	state_put_u64(&w, ID_ADDR);
	state_put_u32(&w, GSI);
	state_end(&w);
	state_reader_init(&r, w.buf, w.len);
	assert_int_equal(vm_device_restore(vmgenid_device(g), &r), -EPROTONOSUPPORT);
	state_writer_free(&w);

	assert_memory_equal(guest_mem_ptr(&f->mem, 0, MEM_SIZE), mem_before, MEM_SIZE);
	assert_int_equal(f->raised, 0);
	assert_int_equal(vmgenid_addr(g), ID_ADDR);
	destroy(g);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_fresh_id_at_boot_none_for_restore, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_restore_writes_new_id_and_notifies, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_restore_refuses_bad_sections, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
