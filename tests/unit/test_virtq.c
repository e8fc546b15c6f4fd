/* The split virtqueue, device side, driven by a test "driver" that writes rings into guest memory:
 * well-formed chains (direct, indirect) come out as the right buffers, used entries and
 * notification suppression follow the spec, and every broken rule a hostile driver can write
 * fails the pop with a reason instead of touching memory outside guest RAM. Guest RAM here is
 * malloc'ed, so under ASan any access past it is caught. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "virtio/device.h"
#include "virtio/queue.h"
#include "virtio/virtio.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RAM_SIZE  0x40000ULL  /* region 0: [0, 256 KiB) */
#define HIGH_GPA  0x100000ULL /* region 1: [1 MiB, 1 MiB + 64 KiB), after a hole */
#define HIGH_SIZE 0x10000ULL

#define DESC_GPA  0x1000ULL
#define AVAIL_GPA 0x2000ULL
#define USED_GPA  0x3000ULL
#define BUF_GPA	  0x8000ULL
#define QSIZE	  16

#define F_INDIRECT (1ULL << VIRTIO_F_INDIRECT_DESC)
#define F_EVENT	   (1ULL << VIRTIO_F_EVENT_IDX)

struct fx {
	struct guest_mem mem;
	uint8_t *ram, *high;
	struct virtq q;
	struct virtq_elem e;
};

static int fx_setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->ram = aligned_alloc(4096, RAM_SIZE);
	f->high = aligned_alloc(4096, HIGH_SIZE);
	assert_non_null(f->ram);
	assert_non_null(f->high);
	memset(f->ram, 0, RAM_SIZE);
	memset(f->high, 0, HIGH_SIZE);
	f->mem.regions[0] = (struct guest_region){ .gpa = 0, .size = RAM_SIZE, .hva = f->ram };
	f->mem.regions[1] =
		(struct guest_region){ .gpa = HIGH_GPA, .size = HIGH_SIZE, .hva = f->high };
	f->mem.nr_regions = 2;
	f->q.max_size = 1024;
	*state = f;
	return 0;
}

static int fx_teardown(void **state)
{
	struct fx *f = *state;

	free(f->ram);
	free(f->high);
	free(f);
	return 0;
}

static void *gpa(struct fx *f, uint64_t addr)
{
	return guest_mem_ptr(&f->mem, addr, 0);
}

static struct virtq_desc *desc_at(struct fx *f, uint64_t table_gpa, unsigned i)
{
	return (struct virtq_desc *)gpa(f, table_gpa) + i;
}

static void set_desc(struct fx *f, unsigned i, uint64_t addr, uint32_t len, uint16_t flags,
		     uint16_t next)
{
	*desc_at(f, f->q.desc_gpa, i) =
		(struct virtq_desc){ .addr = addr, .len = len, .flags = flags, .next = next };
}

/* An indirect table entry; tables may be unaligned, so write through memcpy. */
static void set_ind(struct fx *f, uint64_t table_gpa, unsigned i, uint64_t addr, uint32_t len,
		    uint16_t flags, uint16_t next)
{
	struct virtq_desc d = { .addr = addr, .len = len, .flags = flags, .next = next };

	memcpy((uint8_t *)gpa(f, table_gpa) + i * sizeof(d), &d, sizeof(d));
}

static struct virtq_avail *avail(struct fx *f)
{
	return gpa(f, f->q.avail_gpa);
}

static struct virtq_used *used(struct fx *f)
{
	return gpa(f, f->q.used_gpa);
}

static void avail_add(struct fx *f, uint16_t head)
{
	struct virtq_avail *a = avail(f);

	a->ring[a->idx % f->q.size] = head;
	a->idx++;
}

static void activate(struct fx *f, uint16_t size, uint64_t features)
{
	f->q.size = size;
	if (!f->q.desc_gpa) {
		f->q.desc_gpa = DESC_GPA;
		f->q.avail_gpa = AVAIL_GPA;
		f->q.used_gpa = USED_GPA;
	}
	assert_int_equal(virtq_activate(&f->q, &f->mem, features), 0);
	assert_string_equal(f->q.error, "");
}

/* Pops expecting -EINVAL with a reason containing `what`. */
static void pop_fails(struct fx *f, const char *what)
{
	f->q.error[0] = '\0';
	assert_int_equal(virtq_pop(&f->q, &f->e), -EINVAL);
	if (!strstr(f->q.error, what))
		fail_msg("error \"%s\" does not mention \"%s\"", f->q.error, what);
}

/* A single-descriptor chain at descriptor 0 with the given buffer, made available. */
static void one_desc(struct fx *f, uint64_t addr, uint32_t len, uint16_t flags)
{
	set_desc(f, 0, addr, len, flags, 0);
	avail_add(f, 0);
}

/* ---- well-formed chains ---- */

static void test_chain_out_in(void **state)
{
	struct fx *f = *state;
	char buf[64];

	activate(f, QSIZE, 0);
	/* Chain 5 -> 9 -> 2: two device-readable buffers, then one device-writable. */
	set_desc(f, 5, BUF_GPA, 10, VIRTQ_DESC_F_NEXT, 9);
	set_desc(f, 9, BUF_GPA + 0x100, 20, VIRTQ_DESC_F_NEXT, 2);
	set_desc(f, 2, HIGH_GPA + 0x40, 512, VIRTQ_DESC_F_WRITE, 7 /* ignored: no NEXT */);
	memcpy(gpa(f, BUF_GPA), "0123456789", 10);
	memcpy(gpa(f, BUF_GPA + 0x100), "abcdefghijklmnopqrst", 20);
	avail_add(f, 5);

	assert_true(virtq_has_avail(&f->q));
	assert_int_equal(virtq_pop(&f->q, &f->e), 1);
	assert_int_equal(f->e.head, 5);
	assert_int_equal(f->e.nr_out, 2);
	assert_int_equal(f->e.nr_in, 1);
	assert_int_equal(f->e.out_len, 30);
	assert_int_equal(f->e.in_len, 512);
	assert_ptr_equal(f->e.iov[0].iov_base, f->ram + BUF_GPA);
	assert_int_equal(f->e.iov[0].iov_len, 10);
	assert_ptr_equal(f->e.iov[1].iov_base, f->ram + BUF_GPA + 0x100);
	assert_ptr_equal(f->e.iov[2].iov_base, f->high + 0x40);
	assert_int_equal(f->e.iov[2].iov_len, 512);
	assert_false(virtq_has_avail(&f->q));

	/* Reads cross buffer boundaries and stop at the end of the out buffers. */
	memset(buf, 0, sizeof(buf));
	assert_int_equal(virtq_elem_read(&f->e, 7, buf, 6), 6);
	assert_memory_equal(buf, "789abc", 6);
	assert_int_equal(virtq_elem_read(&f->e, 25, buf, sizeof(buf)), 5);
	assert_memory_equal(buf, "pqrst", 5);
	assert_int_equal(virtq_elem_read(&f->e, 30, buf, 1), 0);
	/* Writes go to the in buffers only, and stop at their end. */
	assert_int_equal(virtq_elem_write(&f->e, 3, "xyz", 3), 3);
	assert_memory_equal(f->high + 0x43, "xyz", 3);
	assert_int_equal(virtq_elem_write(&f->e, 510, "12345", 5), 2);
	assert_memory_equal(f->high + 0x40 + 510, "12", 2);
	assert_int_equal(f->high[0x40 + 512], 0);

	virtq_push(&f->q, f->e.head, 3);
	assert_int_equal(used(f)->idx, 1);
	assert_int_equal(used(f)->ring[0].id, 5);
	assert_int_equal(used(f)->ring[0].len, 3);
	assert_int_equal(virtq_pop(&f->q, &f->e), 0);
}

static void test_empty_ring(void **state)
{
	struct fx *f = *state;

	activate(f, QSIZE, 0);
	assert_false(virtq_has_avail(&f->q));
	assert_int_equal(virtq_pop(&f->q, &f->e), 0);
	assert_int_equal(f->q.last_avail_idx, 0);
}

static void test_unpop(void **state)
{
	struct fx *f = *state;

	activate(f, QSIZE, 0);
	one_desc(f, BUF_GPA, 64, VIRTQ_DESC_F_WRITE);
	set_desc(f, 1, BUF_GPA + 64, 8, 0, 0);
	avail_add(f, 1);
	assert_int_equal(virtq_pop(&f->q, &f->e), 1);
	assert_int_equal(f->e.head, 0);
	virtq_unpop(&f->q);
	assert_true(virtq_has_avail(&f->q));
	assert_int_equal(virtq_pop(&f->q, &f->e), 1);
	assert_int_equal(f->e.head, 0);
	assert_int_equal(f->e.nr_in, 1);
	assert_int_equal(virtq_pop(&f->q, &f->e), 1);
	assert_int_equal(f->e.head, 1);
	assert_int_equal(virtq_pop(&f->q, &f->e), 0);
}

/* The 16-bit indices wrap: the device follows the driver across 65536 and the used ring's slot is
 * always idx % size. */
static void test_index_wrap(void **state)
{
	struct fx *f = *state;

	activate(f, 4, 0);
	for (unsigned i = 0; i < 4; i++)
		set_desc(f, i, BUF_GPA + 16 * i, 16, 0, 0);
	for (unsigned n = 0; n < 70000; n++) {
		avail_add(f, n % 4);
		if (n % 3 == 0)
			avail_add(f, (n + 1) % 4); /* sometimes two at once */
		while (virtq_has_avail(&f->q)) {
			uint16_t slot = f->q.used_idx % 4;

			assert_int_equal(virtq_pop(&f->q, &f->e), 1);
			virtq_push(&f->q, f->e.head, n);
			assert_int_equal(used(f)->ring[slot].id, f->e.head);
			assert_int_equal(used(f)->ring[slot].len, n);
		}
		assert_int_equal(used(f)->idx, avail(f)->idx);
	}
}

/* The longest chain allowed: VIRTQ_MAX_SEGS distinct descriptors in a larger queue. */
static void test_longest_chain(void **state)
{
	struct fx *f = *state;

	f->q.desc_gpa = 0x10000; /* 512 * 16 = 0x2000 bytes */
	f->q.avail_gpa = 0x12000;
	f->q.used_gpa = 0x13000;
	activate(f, 512, 0);
	for (unsigned i = 0; i < VIRTQ_MAX_SEGS; i++)
		set_desc(f, i, BUF_GPA + i, 1, i + 1 < VIRTQ_MAX_SEGS ? VIRTQ_DESC_F_NEXT : 0,
			 i + 1);
	avail_add(f, 0);
	assert_int_equal(virtq_pop(&f->q, &f->e), 1);
	assert_int_equal(f->e.nr_out, VIRTQ_MAX_SEGS);
	assert_int_equal(f->e.out_len, VIRTQ_MAX_SEGS);
	assert_ptr_equal(f->e.iov[VIRTQ_MAX_SEGS - 1].iov_base, f->ram + BUF_GPA + 255);
}

static void test_indirect(void **state)
{
	struct fx *f = *state;
	const uint64_t table = 0x6000;

	activate(f, QSIZE, F_INDIRECT);
	/* Head 3 refers to a table whose chain is 0 -> 2 -> 1 (out, out, in). The WRITE flag on
	 * the referring descriptor means nothing (2.7.5.3.2). */
	set_desc(f, 3, table, 3 * 16, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_WRITE, 0);
	set_ind(f, table, 0, BUF_GPA, 16, VIRTQ_DESC_F_NEXT, 2);
	set_ind(f, table, 2, BUF_GPA + 16, 4, VIRTQ_DESC_F_NEXT, 1);
	set_ind(f, table, 1, BUF_GPA + 32, 1, VIRTQ_DESC_F_WRITE, 0);
	avail_add(f, 3);
	assert_int_equal(virtq_pop(&f->q, &f->e), 1);
	assert_int_equal(f->e.head, 3);
	assert_int_equal(f->e.nr_out, 2);
	assert_int_equal(f->e.nr_in, 1);
	assert_int_equal(f->e.out_len, 20);
	assert_int_equal(f->e.in_len, 1);
	assert_ptr_equal(f->e.iov[1].iov_base, f->ram + BUF_GPA + 16);
	assert_ptr_equal(f->e.iov[2].iov_base, f->ram + BUF_GPA + 32);
	virtq_push(&f->q, 3, 1);
	assert_int_equal(used(f)->ring[0].id, 3);

	/* A direct descriptor may lead to one that refers to a table; an unaligned table works. */
	set_desc(f, 7, BUF_GPA + 64, 8, VIRTQ_DESC_F_NEXT, 8);
	set_desc(f, 8, table + 0x101, 2 * 16, VIRTQ_DESC_F_INDIRECT, 0);
	set_ind(f, table + 0x101, 0, BUF_GPA + 72, 8, VIRTQ_DESC_F_NEXT, 1);
	set_ind(f, table + 0x101, 1, HIGH_GPA, 100, VIRTQ_DESC_F_WRITE, 0);
	avail_add(f, 7);
	assert_int_equal(virtq_pop(&f->q, &f->e), 1);
	assert_int_equal(f->e.head, 7);
	assert_int_equal(f->e.nr_out, 2);
	assert_int_equal(f->e.nr_in, 1);
	assert_int_equal(f->e.out_len, 16);
	assert_int_equal(f->e.in_len, 100);
	assert_ptr_equal(f->e.iov[2].iov_base, f->high);
}

/* Pages skiff wrote for the guest are marked dirty at the push, after the device's writes: a look
 * at the bitmap between the pop and the push (a live migration's pass, which then copies the
 * page) must not leave the device's later write unmarked. */
static bool page_marked(const uint64_t *map, uint64_t offset)
{
	uint64_t pg = offset / GUEST_PAGE_SIZE;

	return map[pg / 64] & (1ULL << (pg % 64));
}

static void test_push_marks_written_pages(void **state)
{
	struct fx *f = *state;
	const uint64_t table = 0x6000;
	uint64_t low[RAM_SIZE / GUEST_PAGE_SIZE / 64 + 1], high[HIGH_SIZE / GUEST_PAGE_SIZE / 64 + 1];

	assert_int_equal(guest_mem_track_dirty(&f->mem), 0);
	assert_true(guest_mem_tracking(&f->mem));
	activate(f, QSIZE, F_INDIRECT);
	/* Head 4: out at BUF_GPA, in at 0xa000 (two pages) and in region 1; head 6: an indirect
	 * table whose in buffer is at 0x11000. */
	set_desc(f, 4, BUF_GPA, 16, VIRTQ_DESC_F_NEXT, 5);
	set_desc(f, 5, 0xa800, 0x1000, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
	set_desc(f, 1, HIGH_GPA + 0x2000, 8, VIRTQ_DESC_F_WRITE, 0);
	set_desc(f, 6, table, 2 * 16, VIRTQ_DESC_F_INDIRECT, 0);
	set_ind(f, table, 0, BUF_GPA + 64, 16, VIRTQ_DESC_F_NEXT, 1);
	set_ind(f, table, 1, 0x11000, 512, VIRTQ_DESC_F_WRITE, 0);
	avail_add(f, 4);
	avail_add(f, 6);
	assert_int_equal(virtq_pop(&f->q, &f->e), 1);
	assert_int_equal(virtq_pop(&f->q, &f->e), 1);

	/* The pass takes the pop's marks; the device writes after that, then pushes. */
	memset(low, 0, sizeof(low));
	memset(high, 0, sizeof(high));
	guest_mem_take_dirty(&f->mem, 0, low);
	guest_mem_take_dirty(&f->mem, 1, high);
	assert_true(page_marked(low, 0xa000));
	memset(low, 0, sizeof(low));
	memset(high, 0, sizeof(high));
	virtq_push(&f->q, 4, 0x1008);
	virtq_push(&f->q, 6, 512);
	guest_mem_take_dirty(&f->mem, 0, low);
	guest_mem_take_dirty(&f->mem, 1, high);
	assert_true(page_marked(low, 0xa000));
	assert_true(page_marked(low, 0xb000));
	assert_true(page_marked(high, 0x2000));
	assert_true(page_marked(low, 0x11000));
	assert_true(page_marked(low, USED_GPA));
	/* Device-readable buffers and the descriptor table are the driver's writes, not ours. */
	assert_false(page_marked(low, BUF_GPA));
	assert_false(page_marked(low, DESC_GPA));
	assert_false(page_marked(low, table));
	for (int i = 0; i < f->mem.nr_regions; i++)
		free(f->mem.dirty[i]);
}

/* ---- notification suppression ---- */

static uint16_t *used_event(struct fx *f)
{
	return &avail(f)->ring[f->q.size];
}

static uint16_t *avail_event(struct fx *f)
{
	return (uint16_t *)&used(f)->ring[f->q.size];
}

static void push_one(struct fx *f)
{
	virtq_push(&f->q, 0, 0);
}

static void test_no_interrupt_flag(void **state)
{
	struct fx *f = *state;

	activate(f, QSIZE, 0);
	*used_event(f) = 1000; /* ignored without EVENT_IDX */
	push_one(f);
	assert_true(virtq_should_notify(&f->q));
	avail(f)->flags = VIRTQ_AVAIL_F_NO_INTERRUPT;
	push_one(f);
	assert_false(virtq_should_notify(&f->q));
	avail(f)->flags = 0;
	push_one(f);
	assert_true(virtq_should_notify(&f->q));
}

static void test_event_idx_interrupts(void **state)
{
	struct fx *f = *state;

	activate(f, QSIZE, F_EVENT);
	avail(f)->flags = VIRTQ_AVAIL_F_NO_INTERRUPT; /* ignored with EVENT_IDX */
	*used_event(f) = 0;
	push_one(f); /* used idx 0 -> 1: the entry at used_event was written */
	assert_true(virtq_should_notify(&f->q));
	push_one(f); /* 1 -> 2: the driver still asks for entry 0, already signalled */
	assert_false(virtq_should_notify(&f->q));

	*used_event(f) = 4; /* "interrupt me when entry 4 is used" */
	push_one(f);	    /* -> 3 */
	assert_false(virtq_should_notify(&f->q));
	push_one(f); /* -> 4 */
	assert_false(virtq_should_notify(&f->q));
	push_one(f); /* -> 5: entry 4 written */
	assert_true(virtq_should_notify(&f->q));
	assert_false(virtq_should_notify(&f->q)); /* nothing new */

	/* A batch that passes used_event notifies once. */
	*used_event(f) = 7;
	push_one(f); /* -> 6 */
	push_one(f); /* -> 7 */
	push_one(f); /* -> 8 */
	assert_true(virtq_should_notify(&f->q));
	push_one(f);
	assert_false(virtq_should_notify(&f->q));

	/* Across the 16-bit wrap. */
	f->q.used_idx = 0xfffe;
	f->q.signalled_used = 0xfffe;
	*used_event(f) = 0xffff;
	push_one(f); /* -> 0xffff */
	assert_false(virtq_should_notify(&f->q));
	push_one(f); /* -> 0x0000: entry 0xffff written */
	assert_true(virtq_should_notify(&f->q));
	assert_int_equal(used(f)->idx, 0);
}

static void test_device_notification_flag(void **state)
{
	struct fx *f = *state;

	activate(f, QSIZE, 0);
	virtq_set_notification(&f->q, false);
	assert_int_equal(used(f)->flags, VIRTQ_USED_F_NO_NOTIFY);
	virtq_set_notification(&f->q, true);
	assert_int_equal(used(f)->flags, 0);
	assert_int_equal(*avail_event(f), 0);
}

static void test_event_idx_avail_event(void **state)
{
	struct fx *f = *state;

	activate(f, QSIZE, F_EVENT);
	*avail_event(f) = 0xabcd;
	one_desc(f, BUF_GPA, 8, 0);
	avail_add(f, 0);
	assert_int_equal(virtq_pop(&f->q, &f->e), 1);
	assert_int_equal(virtq_pop(&f->q, &f->e), 1);
	virtq_set_notification(&f->q, false);
	assert_int_equal(*avail_event(f), 0xabcd); /* left behind: no kicks wanted */
	virtq_set_notification(&f->q, true);
	assert_int_equal(*avail_event(f), 2); /* kick me when you add entry 2 */
	assert_int_equal(used(f)->flags, 0);  /* the flag is not used with EVENT_IDX */
	assert_false(virtq_has_avail(&f->q));
}

/* virtq_pop_armed: a chain comes out as from virtq_pop and leaves the queue as it was; an empty
 * ring asks for the next kick (avail_event with EVENT_IDX, the flag without). */
static void test_pop_armed(void **state)
{
	struct fx *f = *state;

	activate(f, QSIZE, F_EVENT);
	*avail_event(f) = 0xabcd;
	one_desc(f, BUF_GPA, 8, 0);
	assert_int_equal(virtq_pop_armed(&f->q, &f->e), 1);
	assert_int_equal(f->e.head, 0);
	assert_int_equal(*avail_event(f), 0xabcd); /* a chain: no kick asked for */
	assert_int_equal(virtq_pop_armed(&f->q, &f->e), 0);
	assert_int_equal(*avail_event(f), 1); /* empty: kick me when you add entry 1 */

	virtq_reset(&f->q);
	activate(f, QSIZE, 0);
	avail(f)->idx = 0;
	virtq_set_notification(&f->q, false);
	assert_int_equal(virtq_pop_armed(&f->q, &f->e), 0);
	assert_int_equal(used(f)->flags, 0);
	/* A broken chain fails as virtq_pop does. */
	set_desc(f, 0, BUF_GPA, 8, 0, 0);
	avail_add(f, QSIZE);
	f->q.error[0] = '\0';
	assert_int_equal(virtq_pop_armed(&f->q, &f->e), -EINVAL);
	assert_true(f->q.error[0] != '\0');
}

/* Right after activation nothing has been signalled yet: the first push notifies whatever
 * used_event says (an extra interrupt is allowed; a lost one would hang the driver). */
static void test_event_idx_first_notification(void **state)
{
	struct fx *f = *state;

	activate(f, QSIZE, F_EVENT);
	*used_event(f) = 100;
	push_one(f);
	assert_true(virtq_should_notify(&f->q));
	push_one(f);
	assert_false(virtq_should_notify(&f->q));
}

/* A device reset forgets the indices and the notification state; the driver starts over. */
static void test_reset_and_reactivate(void **state)
{
	struct fx *f = *state;

	activate(f, QSIZE, F_EVENT);
	one_desc(f, BUF_GPA, 8, 0);
	assert_int_equal(virtq_pop(&f->q, &f->e), 1);
	push_one(f);
	assert_true(virtq_should_notify(&f->q));

	virtq_reset(&f->q);
	assert_false(virtq_has_avail(&f->q));
	assert_int_equal(virtq_pop(&f->q, &f->e), -EINVAL); /* not activated */
	memset(gpa(f, AVAIL_GPA), 0, 6 + 2 * QSIZE);
	memset(gpa(f, USED_GPA), 0, 6 + 8 * QSIZE);
	activate(f, QSIZE, 0);
	assert_false(f->q.event_idx);
	assert_int_equal(f->q.last_avail_idx, 0);
	assert_int_equal(f->q.used_idx, 0);
	one_desc(f, BUF_GPA, 8, 0);
	assert_int_equal(virtq_pop(&f->q, &f->e), 1);
	push_one(f);
	assert_int_equal(used(f)->idx, 1);
}

/* A pop that fails does not consume the entry (the device is to be reset, not to go on). */
static void test_failed_pop_consumes_nothing(void **state)
{
	struct fx *f = *state;

	activate(f, QSIZE, 0);
	one_desc(f, BUF_GPA, 0, 0);
	pop_fails(f, "zero length");
	assert_int_equal(f->q.last_avail_idx, 0);
	assert_true(virtq_has_avail(&f->q));
}

/* ---- activation ---- */

static void activate_fails(struct fx *f, uint16_t size, uint64_t desc, uint64_t av, uint64_t us,
			   const char *what)
{
	f->q.size = size;
	f->q.desc_gpa = desc;
	f->q.avail_gpa = av;
	f->q.used_gpa = us;
	f->q.error[0] = '\0';
	assert_int_equal(virtq_activate(&f->q, &f->mem, 0), -EINVAL);
	if (!strstr(f->q.error, what))
		fail_msg("error \"%s\" does not mention \"%s\"", f->q.error, what);
	/* A failed queue is not usable: pop does not return chains. */
	assert_int_equal(virtq_pop(&f->q, &f->e), -EINVAL);
	assert_false(virtq_has_avail(&f->q));
}

static void test_activate_checks(void **state)
{
	struct fx *f = *state;

	f->q.max_size = 256;
	activate_fails(f, 0, DESC_GPA, AVAIL_GPA, USED_GPA, "queue size 0");
	activate_fails(f, 12, DESC_GPA, AVAIL_GPA, USED_GPA, "queue size 12");
	activate_fails(f, 512, DESC_GPA, AVAIL_GPA, USED_GPA, "queue size 512");
	activate_fails(f, 16, DESC_GPA + 8, AVAIL_GPA, USED_GPA, "not 16-byte aligned");
	activate_fails(f, 16, DESC_GPA, AVAIL_GPA + 1, USED_GPA, "not 2-byte aligned");
	activate_fails(f, 16, DESC_GPA, AVAIL_GPA, USED_GPA + 2, "not 4-byte aligned");
	/* Outside RAM, in the hole, straddling the end of a region (by one byte). */
	activate_fails(f, 16, 0x40000000, AVAIL_GPA, USED_GPA, "descriptor table");
	activate_fails(f, 16, RAM_SIZE - 16 * 16 + 16, AVAIL_GPA, USED_GPA, "not in guest RAM");
	activate_fails(f, 16, DESC_GPA, HIGH_GPA + HIGH_SIZE - (6 + 2 * 16) + 2, USED_GPA,
		       "available ring");
	activate_fails(f, 16, DESC_GPA, AVAIL_GPA, RAM_SIZE - 132, "used ring");
	activate_fails(f, 16, DESC_GPA, AVAIL_GPA, 0xfffffffffffffff0ULL, "used ring");
	/* Exactly at the end is fine. */
	f->q.desc_gpa = RAM_SIZE - 16 * 16;
	f->q.avail_gpa = HIGH_GPA + HIGH_SIZE - (6 + 2 * 16);
	f->q.used_gpa = RAM_SIZE - 16 * 16 - 136; /* 134 bytes used, 4-aligned */
	activate(f, 16, 0);
	virtq_reset(&f->q);
	assert_int_equal(f->q.max_size, 256);
	assert_int_equal(f->q.size, 0);
	assert_null(f->q.avail);
}

/* ---- a hostile driver ---- */

static void test_bad_avail_index(void **state)
{
	struct fx *f = *state;

	activate(f, QSIZE, 0);
	set_desc(f, 0, BUF_GPA, 8, 0, 0);
	avail(f)->idx = QSIZE + 1;
	pop_fails(f, "available index jumped by 17");
	/* Exactly a full ring is allowed. */
	avail(f)->idx = QSIZE;
	assert_int_equal(virtq_pop(&f->q, &f->e), 1);
}

static void test_bad_head(void **state)
{
	struct fx *f = *state;

	activate(f, QSIZE, 0);
	avail_add(f, QSIZE);
	pop_fails(f, "head 16");
}

static void test_desc_loop(void **state)
{
	struct fx *f = *state;

	activate(f, QSIZE, 0);
	set_desc(f, 0, BUF_GPA, 8, VIRTQ_DESC_F_NEXT, 1);
	set_desc(f, 1, BUF_GPA, 8, VIRTQ_DESC_F_NEXT, 0);
	avail_add(f, 0);
	pop_fails(f, "longer than 16 (a loop?)");

	/* A descriptor pointing to itself. */
	virtq_reset(&f->q);
	f->q.max_size = 1024;
	activate(f, QSIZE, 0);
	set_desc(f, 4, BUF_GPA, 8, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 4);
	avail(f)->idx = 0;
	avail_add(f, 4);
	pop_fails(f, "longer than");
}

/* In a queue larger than VIRTQ_MAX_SEGS a chain of distinct descriptors is bounded too. */
static void test_chain_too_long(void **state)
{
	struct fx *f = *state;

	f->q.desc_gpa = 0x10000;
	f->q.avail_gpa = 0x12000;
	f->q.used_gpa = 0x13000;
	activate(f, 512, 0);
	for (unsigned i = 0; i < VIRTQ_MAX_SEGS + 1; i++)
		set_desc(f, i, BUF_GPA, 1, i < VIRTQ_MAX_SEGS ? VIRTQ_DESC_F_NEXT : 0, i + 1);
	avail_add(f, 0);
	pop_fails(f, "longer than 256");
}

static void test_next_out_of_range(void **state)
{
	struct fx *f = *state;

	activate(f, QSIZE, 0);
	set_desc(f, 0, BUF_GPA, 8, VIRTQ_DESC_F_NEXT, QSIZE);
	avail_add(f, 0);
	pop_fails(f, "descriptor 0: next 16");
	set_desc(f, 0, BUF_GPA, 8, VIRTQ_DESC_F_NEXT, 0xffff);
	pop_fails(f, "next 65535");
}

static void test_bad_buffer_addresses(void **state)
{
	struct fx *f = *state;

	activate(f, QSIZE, 0);
	one_desc(f, 0x80000000, 16, 0); /* nowhere */
	pop_fails(f, "not in guest RAM");
	set_desc(f, 0, RAM_SIZE + 16, 16, VIRTQ_DESC_F_WRITE, 0); /* the hole */
	pop_fails(f, "not in guest RAM");
	set_desc(f, 0, RAM_SIZE - 8, 16, 0, 0); /* straddles the end of region 0 */
	pop_fails(f, "descriptor 0: buffer [0x3fff8, +0x10)");
	set_desc(f, 0, HIGH_GPA + HIGH_SIZE - 1, 2, VIRTQ_DESC_F_WRITE, 0); /* end of region 1 */
	pop_fails(f, "not in guest RAM");
	set_desc(f, 0, 0xfffffffffffff000ULL, 0x2000, 0, 0); /* wraps past 2^64 */
	pop_fails(f, "not in guest RAM");
	set_desc(f, 0, 0x1000, 0xffffffff, 0, 0); /* runs far past RAM */
	pop_fails(f, "not in guest RAM");
	/* The last byte of RAM is fine. */
	set_desc(f, 0, RAM_SIZE - 1, 1, 0, 0);
	assert_int_equal(virtq_pop(&f->q, &f->e), 1);
	assert_ptr_equal(f->e.iov[0].iov_base, f->ram + RAM_SIZE - 1);
}

static void test_zero_length(void **state)
{
	struct fx *f = *state;

	activate(f, QSIZE, 0);
	set_desc(f, 0, BUF_GPA, 8, VIRTQ_DESC_F_NEXT, 1);
	set_desc(f, 1, BUF_GPA, 0, VIRTQ_DESC_F_WRITE, 0);
	avail_add(f, 0);
	pop_fails(f, "descriptor 1: zero length");
}

static void test_readable_after_writable(void **state)
{
	struct fx *f = *state;

	activate(f, QSIZE, 0);
	set_desc(f, 0, BUF_GPA, 8, VIRTQ_DESC_F_NEXT, 1);
	set_desc(f, 1, BUF_GPA, 8, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 2);
	set_desc(f, 2, BUF_GPA, 8, 0, 0);
	avail_add(f, 0);
	pop_fails(f, "descriptor 2: device-readable after device-writable");
}

/* Buffers of 0xffffffff bytes that are really in RAM: their total must not wrap a uint32_t. */
static void test_total_length_overflow(void **state)
{
	struct guest_region layout[] = { { .gpa = 0, .size = 8ULL << 30 } };
	struct guest_mem mem;
	struct virtq q = { .max_size = 16, .size = 16, .desc_gpa = 0x1000, .avail_gpa = 0x2000,
			   .used_gpa = 0x3000 };
	struct virtq_elem *e = malloc(sizeof(*e));
	struct virtq_desc *d;
	struct virtq_avail *a;

	assert_non_null(e);
	assert_int_equal(guest_mem_map(&mem, layout, 1), 0);
	assert_int_equal(virtq_activate(&q, &mem, 0), 0);
	d = guest_mem_ptr(&mem, 0x1000, 16 * 16);
	a = guest_mem_ptr(&mem, 0x2000, 6 + 2 * 16);

	/* One buffer of 4 GiB - 1 is fine... */
	d[0] = (struct virtq_desc){ .addr = 0x10000, .len = 0xffffffff };
	a->ring[0] = 0;
	a->idx = 1;
	assert_int_equal(virtq_pop(&q, e), 1);
	assert_int_equal(e->out_len, 0xffffffff);

	/* ...two are not, nor 1 byte more; nor in the writable direction. */
	d[0] = (struct virtq_desc){ .addr = 0x10000, .len = 0xffffffff, .flags = VIRTQ_DESC_F_NEXT,
				    .next = 1 };
	d[1] = (struct virtq_desc){ .addr = 0x10000, .len = 0xffffffff, .flags = VIRTQ_DESC_F_NEXT,
				    .next = 2 };
	d[2] = (struct virtq_desc){ .addr = 0x10000, .len = 0xffffffff };
	a->ring[1] = 0;
	a->idx = 2;
	assert_int_equal(virtq_pop(&q, e), -EINVAL);
	assert_non_null(strstr(q.error, "descriptor 1: readable buffers exceed 4 GiB"));

	d[0].len = 1;
	d[1].flags = 0;
	assert_int_equal(virtq_pop(&q, e), -EINVAL);
	assert_non_null(strstr(q.error, "exceed 4 GiB"));

	for (int i = 0; i < 3; i++)
		d[i].flags |= VIRTQ_DESC_F_WRITE;
	d[1].flags |= VIRTQ_DESC_F_NEXT;
	assert_int_equal(virtq_pop(&q, e), -EINVAL);
	assert_non_null(strstr(q.error, "descriptor 1: writable buffers exceed 4 GiB"));
	guest_mem_unmap(&mem);
	free(e);
}

/* ---- a hostile driver: indirect tables ---- */

static void test_indirect_not_negotiated(void **state)
{
	struct fx *f = *state;

	activate(f, QSIZE, 0);
	set_ind(f, 0x6000, 0, BUF_GPA, 8, 0, 0);
	one_desc(f, 0x6000, 16, VIRTQ_DESC_F_INDIRECT);
	pop_fails(f, "descriptor 0: INDIRECT not negotiated");
}

static void test_indirect_nested(void **state)
{
	struct fx *f = *state;

	activate(f, QSIZE, F_INDIRECT);
	set_ind(f, 0x6000, 0, BUF_GPA, 8, VIRTQ_DESC_F_NEXT, 1);
	set_ind(f, 0x6000, 1, 0x6000, 32, VIRTQ_DESC_F_INDIRECT, 0);
	one_desc(f, 0x6000, 32, VIRTQ_DESC_F_INDIRECT);
	pop_fails(f, "indirect descriptor 1 of descriptor 0: INDIRECT inside an indirect table");
}

static void test_indirect_with_next(void **state)
{
	struct fx *f = *state;

	activate(f, QSIZE, F_INDIRECT);
	set_ind(f, 0x6000, 0, BUF_GPA, 8, 0, 0);
	set_desc(f, 0, 0x6000, 16, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_NEXT, 1);
	set_desc(f, 1, BUF_GPA, 8, VIRTQ_DESC_F_WRITE, 0);
	avail_add(f, 0);
	pop_fails(f, "INDIRECT together with NEXT");
}

static void test_indirect_bad_table(void **state)
{
	struct fx *f = *state;

	activate(f, QSIZE, F_INDIRECT);
	for (unsigned i = 0; i < VIRTQ_MAX_SEGS + 1; i++)
		set_ind(f, 0x10000, i, BUF_GPA, 1, VIRTQ_DESC_F_NEXT, i + 1);
	one_desc(f, 0x10000, 24, VIRTQ_DESC_F_INDIRECT);
	pop_fails(f, "indirect table length 24");
	set_desc(f, 0, 0x10000, 0, VIRTQ_DESC_F_INDIRECT, 0);
	pop_fails(f, "indirect table length 0");
	set_desc(f, 0, 0x10000, (VIRTQ_MAX_SEGS + 1) * 16, VIRTQ_DESC_F_INDIRECT, 0);
	pop_fails(f, "indirect table length 4112");
	set_desc(f, 0, 0x10000, 0xfffffff0, VIRTQ_DESC_F_INDIRECT, 0);
	pop_fails(f, "indirect table length");
	/* Outside RAM, straddling the end of RAM, wrapping. */
	set_desc(f, 0, 0x80000000, 16, VIRTQ_DESC_F_INDIRECT, 0);
	pop_fails(f, "indirect table [0x80000000, +0x10) not in guest RAM");
	set_desc(f, 0, RAM_SIZE - 16, 32, VIRTQ_DESC_F_INDIRECT, 0);
	pop_fails(f, "not in guest RAM");
	set_desc(f, 0, 0xfffffffffffffff0ULL, 32, VIRTQ_DESC_F_INDIRECT, 0);
	pop_fails(f, "not in guest RAM");
	/* The table's own chain: next beyond the table, a loop, too long. */
	set_desc(f, 0, 0x10000, 4 * 16, VIRTQ_DESC_F_INDIRECT, 0);
	pop_fails(f, "indirect descriptor 3 of descriptor 0: next 4 is not below the table size 4");
	set_ind(f, 0x10000, 3, BUF_GPA, 1, VIRTQ_DESC_F_NEXT, 1);
	pop_fails(f, "longer than 4 (a loop?)");
	/* A full table of VIRTQ_MAX_SEGS is fine... */
	set_ind(f, 0x10000, 3, BUF_GPA, 1, VIRTQ_DESC_F_NEXT, 4);
	set_ind(f, 0x10000, VIRTQ_MAX_SEGS - 1, BUF_GPA, 1, 0, 0);
	set_desc(f, 0, 0x10000, VIRTQ_MAX_SEGS * 16, VIRTQ_DESC_F_INDIRECT, 0);
	assert_int_equal(virtq_pop(&f->q, &f->e), 1);
	assert_int_equal(f->e.nr_out, VIRTQ_MAX_SEGS);
	/* ...but not after a direct buffer: the element holds VIRTQ_MAX_SEGS buffers. */
	set_desc(f, 1, BUF_GPA, 1, VIRTQ_DESC_F_NEXT, 0);
	avail_add(f, 1);
	pop_fails(f, "more than 256 buffers");
	/* Writable then (in the table) readable. */
	set_desc(f, 1, BUF_GPA, 1, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 0);
	set_desc(f, 0, 0x10000, 16, VIRTQ_DESC_F_INDIRECT, 0);
	set_ind(f, 0x10000, 0, BUF_GPA, 1, 0, 0);
	pop_fails(f, "indirect descriptor 0 of descriptor 0: device-readable after");
	/* Zero length and bad addresses inside the table. */
	set_desc(f, 1, BUF_GPA, 1, VIRTQ_DESC_F_NEXT, 0);
	set_ind(f, 0x10000, 0, BUF_GPA, 0, 0, 0);
	pop_fails(f, "indirect descriptor 0 of descriptor 0: zero length");
	set_ind(f, 0x10000, 0, RAM_SIZE - 1, 2, 0, 0);
	pop_fails(f, "indirect descriptor 0 of descriptor 0: buffer");
}

/* ---- virtio_dev_fail ---- */

static int fail_calls, fail_queue;
static char fail_reason[256];

static void record_fail(struct virtio_device *dev, int q, const char *reason)
{
	fail_calls++;
	fail_queue = q;
	snprintf(fail_reason, sizeof(fail_reason), "%s", reason);
}

static void test_dev_fail_once(void **state)
{
	struct virtio_device dev = { .name = "virtio-test t0", .fail = record_fail };

	fail_calls = 0;
	virtio_dev_fail(&dev, 2, "descriptor %u: %s", 7, "zero length");
	assert_true(dev.failed);
	assert_int_equal(fail_calls, 1);
	assert_int_equal(fail_queue, 2);
	assert_string_equal(fail_reason, "descriptor 7: zero length");
	virtio_dev_fail(&dev, -1, "again");
	assert_int_equal(fail_calls, 1);
	assert_string_equal(fail_reason, "descriptor 7: zero length");

	/* After a reset (the transport clears failed) it reports again; no callback is fine. */
	dev.failed = false;
	virtio_dev_fail(&dev, -1, "bad config write at %d", 3);
	assert_int_equal(fail_calls, 2);
	assert_int_equal(fail_queue, -1);
	assert_string_equal(fail_reason, "bad config write at 3");
	dev.failed = false;
	dev.fail = NULL;
	virtio_dev_fail(&dev, 0, "no callback");
	assert_true(dev.failed);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_chain_out_in),
		T(test_empty_ring),
		T(test_unpop),
		T(test_index_wrap),
		T(test_longest_chain),
		T(test_indirect),
		T(test_push_marks_written_pages),
		T(test_no_interrupt_flag),
		T(test_event_idx_interrupts),
		T(test_device_notification_flag),
		T(test_event_idx_avail_event),
		T(test_pop_armed),
		T(test_event_idx_first_notification),
		T(test_reset_and_reactivate),
		T(test_failed_pop_consumes_nothing),
		T(test_activate_checks),
		T(test_bad_avail_index),
		T(test_bad_head),
		T(test_desc_loop),
		T(test_chain_too_long),
		T(test_next_out_of_range),
		T(test_bad_buffer_addresses),
		T(test_zero_length),
		T(test_readable_after_writable),
		cmocka_unit_test(test_total_length_overflow),
		T(test_indirect_not_negotiated),
		T(test_indirect_nested),
		T(test_indirect_with_next),
		T(test_indirect_bad_table),
		cmocka_unit_test(test_dev_fail_once),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
