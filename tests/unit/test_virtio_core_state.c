/* The virtio core's saved state (virtio/core_state.h), over the virtio-mmio transport driven
 * register by register, with a tiny echo device behind it (queue 0: every chain's out bytes are
 * copied into its in buffers). A device saved mid-run and restored into a fresh one saves the
 * same bytes, reads the same registers, and goes on from the saved ring indices: a chain posted
 * after the restore is the only one it answers. Truncated, garbled, foreign and unknown-version
 * state is refused with a reason, leaving the fresh device as it was. No KVM (vm_fd -1). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/guest_mem.h"
#include "base/state.h"
#include "bus/bus.h"
#include "virtio/core_state.h"
#include "virtio/mmio.h"
#include "virtio/virtio.h"

#include <errno.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define RAM_SIZE 0x100000ULL
#define QMAX	 64
#define F_DEV0	 (1ULL << 0)
#define F_V1	 (1ULL << VIRTIO_F_VERSION_1)
#define TAG	 17

struct echo {
	struct virtio_device dev;
	atomic_int activates, chains, restoreds;
	struct virtq_elem elem;
};

static uint64_t echo_features(struct virtio_device *dev)
{
	return F_DEV0;
}

static void echo_config_read(struct virtio_device *dev, uint32_t off, void *data, uint32_t len)
{
	memset(data, 0, len);
}

static int echo_activate(struct virtio_device *dev)
{
	atomic_fetch_add(&((struct echo *)dev->priv)->activates, 1);
	return 0;
}

static void echo_queue_notify(struct virtio_device *dev, uint16_t q)
{
	struct echo *e = dev->priv;
	struct virtq *vq = &dev->queues[q];
	bool pushed = false;

	if (q != 0)
		return;
	while (virtq_pop(vq, &e->elem) == 1) {
		uint8_t buf[256];
		size_t n = virtq_elem_read(&e->elem, 0, buf, sizeof(buf));

		n = virtq_elem_write(&e->elem, 0, buf, n);
		virtq_push(vq, e->elem.head, n);
		atomic_fetch_add(&e->chains, 1);
		pushed = true;
	}
	if (pushed)
		dev->signal_used(dev, q);
}

static void echo_destroy(struct virtio_device *dev)
{
}

static void echo_restored(struct virtio_device *dev)
{
	atomic_fetch_add(&((struct echo *)dev->priv)->restoreds, 1);
}

static const struct virtio_device_ops echo_ops = {
    .device_id = VIRTIO_ID_RNG,
    .nr_queues = 2,
    .queue_max_size = QMAX,
    .config_size = 8,
    .features = echo_features,
    .config_read = echo_config_read,
    .activate = echo_activate,
    .queue_notify = echo_queue_notify,
    .restored = echo_restored,
    .destroy = echo_destroy,
};

/* Guest RAM shared by every device of a test, as a restored VM has the saved VM's memory. */
struct fx {
	struct guest_mem mem;
	struct bus bus;
	struct echo echo[3];
	struct virtio_mmio *t[3];
};

static struct virtio_mmio *attach_ops(struct fx *f, int i, const struct virtio_device_ops *ops);

static struct virtio_mmio *attach(struct fx *f, int i)
{
	return attach_ops(f, i, &echo_ops);
}

static struct virtio_mmio *attach_ops(struct fx *f, int i, const struct virtio_device_ops *ops)
{
	struct virtio_mmio_params p = {.bus = &f->bus,
				       .vm_fd = -1,
				       .mem = &f->mem,
				       .base = 0xd0000000ULL + 0x1000ULL * (uint64_t)i,
				       .gsi = 5 + (uint32_t)i};
	struct echo *e = &f->echo[i];

	memset(e, 0, sizeof(*e));
	e->dev.ops = ops;
	e->dev.priv = e;
	snprintf(e->dev.name, sizeof(e->dev.name), "virtio-echo %d", i);
	f->t[i] = virtio_mmio_create(&p, &e->dev);
	assert_non_null(f->t[i]);
	return f->t[i];
}

static int fx_setup(void **state)
{
	struct guest_region layout[] = {{.gpa = 0, .size = RAM_SIZE}};
	struct fx *f = calloc(1, sizeof(*f));

	if (!f || guest_mem_map(&f->mem, layout, 1))
		return -1;
	bus_init(&f->bus, "mmio");
	*state = f;
	return 0;
}

static int fx_teardown(void **state)
{
	struct fx *f = *state;

	for (int i = 0; i < 3; i++)
		if (f->t[i])
			virtio_mmio_destroy(f->t[i]);
	bus_destroy(&f->bus);
	guest_mem_unmap(&f->mem);
	free(f);
	return 0;
}

static uint32_t rd(struct virtio_mmio *t, uint64_t off)
{
	uint32_t v = 0xdeadbeef;

	virtio_mmio_ops.read(t, off, &v, 4);
	return v;
}

static void wr(struct virtio_mmio *t, uint64_t off, uint32_t v)
{
	virtio_mmio_ops.write(t, off, &v, 4);
}

#define DESC  0x10000ULL
#define AVAIL 0x10400ULL
#define USED  0x10800ULL
#define BUF   0x11000ULL
#define QSIZE 16

static void driver_init(struct virtio_mmio *t)
{
	uint32_t ok = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK;

	wr(t, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE);
	wr(t, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	wr(t, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	wr(t, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)F_DEV0);
	wr(t, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	wr(t, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(F_V1 >> 32));
	wr(t, VIRTIO_MMIO_STATUS, ok);
	assert_int_equal(rd(t, VIRTIO_MMIO_STATUS), ok);
	wr(t, VIRTIO_MMIO_QUEUE_SEL, 0);
	wr(t, VIRTIO_MMIO_QUEUE_NUM, QSIZE);
	wr(t, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)DESC);
	wr(t, VIRTIO_MMIO_QUEUE_DRIVER_LOW, (uint32_t)AVAIL);
	wr(t, VIRTIO_MMIO_QUEUE_DEVICE_LOW, (uint32_t)USED);
	wr(t, VIRTIO_MMIO_QUEUE_READY, 1);
	/* Queue 1: sized and addressed, never made ready. */
	wr(t, VIRTIO_MMIO_QUEUE_SEL, 1);
	wr(t, VIRTIO_MMIO_QUEUE_NUM, 8);
	wr(t, VIRTIO_MMIO_QUEUE_DESC_LOW, 0x20000);
	wr(t, VIRTIO_MMIO_STATUS, ok | VIRTIO_STATUS_DRIVER_OK);
	wr(t, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
}

static void *gpa(struct fx *f, uint64_t addr, uint64_t len)
{
	void *p = guest_mem_ptr(&f->mem, addr, len);

	assert_non_null(p);
	return p;
}

/* Posts chain number `n` (2 descriptors: 4 bytes out, 16 in) on queue 0 and kicks `t`. */
static void post_and_kick(struct fx *f, struct virtio_mmio *t, uint16_t n)
{
	struct virtq_desc *desc = gpa(f, DESC, 16 * QSIZE);
	struct virtq_avail *avail = gpa(f, AVAIL, 6 + 2 * QSIZE);
	uint16_t head = (uint16_t)((n * 2) % QSIZE);

	memcpy(gpa(f, BUF + 32ULL * n, 4), "ping", 4);
	desc[head] = (struct virtq_desc){
	    .addr = BUF + 32ULL * n, .len = 4, .flags = VIRTQ_DESC_F_NEXT, .next = head + 1};
	desc[head + 1] = (struct virtq_desc){
	    .addr = BUF + 0x800 + 32ULL * n, .len = 16, .flags = VIRTQ_DESC_F_WRITE};
	avail->ring[n % QSIZE] = head;
	__atomic_store_n(&avail->idx, (uint16_t)(n + 1), __ATOMIC_RELEASE);
	wr(t, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
}

static uint16_t used_idx(struct fx *f)
{
	struct virtq_used *used = gpa(f, USED, 6 + 8 * QSIZE);

	return __atomic_load_n(&used->idx, __ATOMIC_ACQUIRE);
}

static void wait_used(struct fx *f, uint16_t idx)
{
	for (int i = 0; i < 5000 && used_idx(f) != idx; i++)
		usleep(1000);
	assert_int_equal(used_idx(f), idx);
}

static void save(struct virtio_mmio *t, struct echo *e, struct state_writer *w)
{
	(void)t;
	state_writer_init(w);
	assert_int_equal(virtio_core_save(virtio_core_of(&e->dev), TAG, w), 0);
}

static int restore(struct echo *e, const void *buf, size_t len, struct state_reader *r)
{
	state_reader_init(r, buf, len);
	return virtio_core_restore(virtio_core_of(&e->dev), TAG, r);
}

/* Every register the driver can read back, selector by selector. */
static void assert_same_registers(struct virtio_mmio *a, struct virtio_mmio *b)
{
	static const uint64_t regs[] = {
	    VIRTIO_MMIO_STATUS,
	    VIRTIO_MMIO_INTERRUPT_STATUS,
	    VIRTIO_MMIO_CONFIG_GENERATION,
	    VIRTIO_MMIO_QUEUE_READY,
	    VIRTIO_MMIO_QUEUE_NUM_MAX,
	    VIRTIO_MMIO_QUEUE_DESC_LOW,
	    VIRTIO_MMIO_QUEUE_DESC_HIGH,
	    VIRTIO_MMIO_QUEUE_DRIVER_LOW,
	    VIRTIO_MMIO_QUEUE_DEVICE_LOW,
	    VIRTIO_MMIO_DEVICE_FEATURES,
	};

	for (uint32_t sel = 0; sel < 3; sel++) {
		wr(a, VIRTIO_MMIO_QUEUE_SEL, sel);
		wr(b, VIRTIO_MMIO_QUEUE_SEL, sel);
		wr(a, VIRTIO_MMIO_DEVICE_FEATURES_SEL, sel % 2);
		wr(b, VIRTIO_MMIO_DEVICE_FEATURES_SEL, sel % 2);
		for (size_t i = 0; i < sizeof(regs) / sizeof(regs[0]); i++)
			assert_int_equal(rd(a, regs[i]), rd(b, regs[i]));
	}
}

static void test_round_trip(void **state)
{
	struct fx *f = *state;
	struct virtio_mmio *a = attach(f, 0), *b = attach(f, 1);
	struct state_writer wa, wb;
	struct state_reader r;

	driver_init(a);
	for (uint16_t n = 0; n < 3; n++) {
		post_and_kick(f, a, n);
		wait_used(f, (uint16_t)(n + 1));
	}
	assert_int_equal(atomic_load(&f->echo[0].chains), 3);
	assert_true(rd(a, VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_ISR_QUEUE);

	save(a, &f->echo[0], &wa);
	assert_int_equal(restore(&f->echo[1], wa.buf, wa.len, &r), 0);
	assert_true(state_reader_at_end(&r));
	assert_int_equal(atomic_load(&f->echo[1].activates), 1);
	assert_int_equal(atomic_load(&f->echo[1].restoreds), 1); /* told it moved, once */
	/* Going on from the saved indices, the fresh device took none of the three chains. */
	assert_int_equal(atomic_load(&f->echo[1].chains), 0);
	save(b, &f->echo[1], &wb);
	assert_int_equal(wb.len, wa.len);
	assert_memory_equal(wb.buf, wa.buf, wa.len);
	assert_same_registers(a, b);

	/* The restored device answers the next chain, and only that one. */
	post_and_kick(f, b, 3);
	wait_used(f, 4);
	assert_int_equal(atomic_load(&f->echo[1].chains), 1);
	assert_memory_equal(gpa(f, BUF + 0x800 + 32 * 3, 4), "ping", 4);

	state_writer_free(&wa);
	state_writer_free(&wb);
}

/* A state saved with fewer queues than the device now has (down to min_saved_queues) loads, the
 * extra queue unready; a state with more queues than the device has, or fewer than its
 * minimum, is refused. */
static void test_fewer_saved_queues(void **state)
{
	/* The same device grown a third queue: states saved with two still load. */
	static struct virtio_device_ops echo3_ops;
	struct fx *f = *state;
	struct virtio_mmio *a, *c;
	struct state_writer wa, wc;
	struct state_reader r;

	echo3_ops = echo_ops;
	echo3_ops.nr_queues = 3;
	echo3_ops.min_saved_queues = 2;
	a = attach(f, 0);
	c = attach_ops(f, 2, &echo3_ops);

	driver_init(a);
	post_and_kick(f, a, 0);
	wait_used(f, 1);
	save(a, &f->echo[0], &wa);
	assert_int_equal(restore(&f->echo[2], wa.buf, wa.len, &r), 0);
	assert_int_equal(atomic_load(&f->echo[2].activates), 1);
	assert_int_equal(atomic_load(&f->echo[2].restoreds), 1);
	wr(c, VIRTIO_MMIO_QUEUE_SEL, 2);
	assert_int_equal(rd(c, VIRTIO_MMIO_QUEUE_READY), 0);
	post_and_kick(f, c, 1);
	wait_used(f, 2);
	assert_int_equal(atomic_load(&f->echo[2].chains), 1);

	/* Three saved queues into a two-queue device: refused, the device untouched. */
	save(c, &f->echo[2], &wc);
	virtio_mmio_destroy(f->t[1]);
	f->t[1] = NULL;
	attach(f, 1);
	assert_int_equal(restore(&f->echo[1], wc.buf, wc.len, &r), -EBADMSG);
	assert_non_null(strstr(state_reader_error(&r), "with 3 queues, not type 4 with 2"));
	assert_int_equal(atomic_load(&f->echo[1].activates), 0);
	state_writer_free(&wa);
	state_writer_free(&wc);
}

/* A device reset before any driver saves as reset devices do, and restores as one. */
static void test_reset_device_round_trip(void **state)
{
	struct fx *f = *state;
	struct virtio_mmio *a = attach(f, 0), *b = attach(f, 1);
	struct state_writer wa, wb;
	struct state_reader r;

	driver_init(b);
	save(a, &f->echo[0], &wa);
	assert_int_equal(restore(&f->echo[1], wa.buf, wa.len, &r), 0);
	assert_int_equal(rd(b, VIRTIO_MMIO_STATUS), 0);
	save(b, &f->echo[1], &wb);
	assert_memory_equal(wb.buf, wa.buf, wa.len);
	state_writer_free(&wa);
	state_writer_free(&wb);
}

/* The fresh device `t` saved as before a refused restore. */
static void assert_refused(struct fx *f, const void *buf, size_t len, int err)
{
	struct state_writer before, after;
	struct state_reader r;

	save(f->t[2], &f->echo[2], &before);
	assert_int_equal(restore(&f->echo[2], buf, len, &r), err);
	assert_true(state_reader_error(&r)[0] != '\0');
	save(f->t[2], &f->echo[2], &after);
	assert_int_equal(before.len, after.len);
	assert_memory_equal(before.buf, after.buf, before.len);
	assert_int_equal(atomic_load(&f->echo[2].activates), 0);
	state_writer_free(&before);
	state_writer_free(&after);
}

/* Offsets in the section's payload (core_state.h's layout). */
#define OFF_DEVICE_ID 0
#define OFF_STATUS    6
#define OFF_ISR	      10
#define OFF_DRV_FEAT  30
#define OFF_FEATURES  39
#define OFF_Q0_SIZE   47
#define OFF_Q0_DESC   50

static void poke(uint8_t *buf, size_t off, uint64_t v, unsigned bytes)
{
	for (unsigned i = 0; i < bytes; i++)
		buf[STATE_SECTION_HEADER_SIZE + off + i] = (uint8_t)(v >> (8 * i));
}

static void test_refuses_bad_state(void **state)
{
	struct fx *f = *state;
	struct virtio_mmio *a = attach(f, 0);
	struct state_writer w;
	uint8_t *bad;

	attach(f, 2);
	driver_init(a);
	post_and_kick(f, a, 0);
	wait_used(f, 1);
	save(a, &f->echo[0], &w);
	bad = malloc(w.len);
	assert_non_null(bad);
	assert_int_equal(bad[0] = w.buf[0], TAG); /* the layout the offsets below assume */

	for (size_t len = 0; len < w.len; len++)
		assert_refused(f, w.buf, len, -EBADMSG);

#define CASE(off, v, bytes, err)                                                                   \
	do {                                                                                       \
		memcpy(bad, w.buf, w.len);                                                         \
		poke(bad, off, v, bytes);                                                          \
		assert_refused(f, bad, w.len, err);                                                \
	} while (0)
	CASE(-6, 2, 2, -EPROTONOSUPPORT);		      /* the section's version */
	CASE(-8, TAG + 1, 2, -EBADMSG);			      /* another device kind's */
	CASE(OFF_DEVICE_ID, VIRTIO_ID_NET, 4, -EBADMSG);      /* another device type */
	CASE(OFF_DEVICE_ID + 4, 3, 2, -EBADMSG);	      /* another queue count */
	CASE(OFF_STATUS, 0x10f, 4, -EBADMSG);		      /* unknown status bits */
	CASE(OFF_STATUS, 0x07, 4, -EBADMSG);		      /* DRIVER_OK, no FEATURES_OK */
	CASE(OFF_ISR, 0x4, 4, -EBADMSG);		      /* unknown interrupt cause */
	CASE(OFF_DRV_FEAT, F_V1 | (1ULL << 40), 8, -EBADMSG); /* never offered */
	CASE(OFF_FEATURES, F_V1, 8, -EBADMSG);		      /* negotiated != accepted */
	CASE(OFF_Q0_SIZE, 12, 2, -EBADMSG);		      /* not a power of 2 */
	CASE(OFF_Q0_SIZE, 128, 2, -EBADMSG);		      /* over the maximum */
#undef CASE

	/* Rings outside guest RAM: refused once the queue would go live, the device left reset. */
	{
		struct state_reader r;

		memcpy(bad, w.buf, w.len);
		poke(bad, OFF_Q0_DESC, RAM_SIZE + 0x1000, 8);
		assert_int_equal(restore(&f->echo[2], bad, w.len, &r), -EBADMSG);
		assert_non_null(strstr(state_reader_error(&r), "queue 0"));
		assert_int_equal(rd(f->t[2], VIRTIO_MMIO_STATUS), 0);
		assert_int_equal(rd(f->t[2], VIRTIO_MMIO_QUEUE_READY), 0);
	}

	/* Random damage: refused or taken, never a crash (ASan); the device stays usable. */
	srand(3);
	for (int i = 0; i < 300; i++) {
		struct state_reader r;
		int ret;

		memcpy(bad, w.buf, w.len);
		for (int k = 0; k < 1 + i % 3; k++)
			bad[(size_t)rand() % w.len] = (uint8_t)rand();
		ret = restore(&f->echo[2], bad, w.len, &r);
		assert_true(ret == 0 || ret == -EBADMSG || ret == -EPROTONOSUPPORT);
	}
	wr(f->t[2], VIRTIO_MMIO_STATUS, 0);
	assert_int_equal(rd(f->t[2], VIRTIO_MMIO_STATUS), 0);
	free(bad);
	state_writer_free(&w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_round_trip, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_fewer_saved_queues, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_reset_device_round_trip, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_refuses_bad_state, fx_setup, fx_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
