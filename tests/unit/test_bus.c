/* The port-I/O / MMIO dispatch registry: lookups find the right device with the right offset,
 * overlapping or malformed ranges are refused, unclaimed accesses read as all ones, accesses
 * that straddle a range's end do not reach the device, and unregistering waits for a vCPU that
 * is still inside the device. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "bus/bus.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct recorder {
	int reads, writes;
	uint64_t last_offset;
	uint32_t last_len;
	uint64_t last_value;
};

static void rec_read(void *opaque, uint64_t offset, void *data, uint32_t len)
{
	struct recorder *r = opaque;

	r->reads++;
	r->last_offset = offset;
	r->last_len = len;
	memset(data, 0xab, len);
}

static void rec_write(void *opaque, uint64_t offset, const void *data, uint32_t len)
{
	struct recorder *r = opaque;

	r->writes++;
	r->last_offset = offset;
	r->last_len = len;
	r->last_value = 0;
	memcpy(&r->last_value, data, len);
}

static const struct bus_device_ops rec_ops = { .read = rec_read, .write = rec_write };

static void test_dispatch_by_address(void **state)
{
	struct bus bus;
	struct recorder a = { 0 }, b = { 0 }, c = { 0 };
	uint32_t v = 0x12345678;
	uint8_t byte;

	bus_init(&bus, "test");
	assert_int_equal(bus_register(&bus, 0x3f8, 8, &rec_ops, &a, "com1"), 0);
	assert_int_equal(bus_register(&bus, 0x60, 1, &rec_ops, &b, "kbd"), 0);
	assert_int_equal(bus_register(&bus, 0x70, 2, &rec_ops, &c, "rtc"), 0);

	assert_int_equal(bus_access(&bus, 0x3fd, &byte, 1, false), 0);
	assert_int_equal(a.reads, 1);
	assert_int_equal(a.last_offset, 5);
	assert_int_equal(byte, 0xab);

	assert_int_equal(bus_access(&bus, 0x70, &v, 2, true), 0);
	assert_int_equal(c.writes, 1);
	assert_int_equal(c.last_offset, 0);
	assert_int_equal(c.last_value, 0x5678);
	assert_int_equal(b.reads + b.writes, 0);

	assert_string_equal(bus_lookup_name(&bus, 0x3ff), "com1");
	assert_null(bus_lookup_name(&bus, 0x400));
	assert_null(bus_lookup_name(&bus, 0x3f7));
	bus_destroy(&bus);
}

static void test_unclaimed_reads_all_ones(void **state)
{
	struct bus bus;
	uint64_t v = 0;

	bus_init(&bus, "test");
	assert_int_equal(bus_access(&bus, 0x1234, &v, 8, false), -ENOENT);
	assert_true(v == ~0ULL);
	assert_int_equal(bus_access(&bus, 0x1234, &v, 4, true), -ENOENT);
	bus_destroy(&bus);
}

static void test_straddling_access_is_not_dispatched(void **state)
{
	struct bus bus;
	struct recorder a = { 0 };
	uint32_t v = 0;

	bus_init(&bus, "test");
	assert_int_equal(bus_register(&bus, 0x1000, 4, &rec_ops, &a, "dev"), 0);
	/* 4 bytes at 0x1002 run past the device's end. */
	assert_int_equal(bus_access(&bus, 0x1002, &v, 4, false), -ENOENT);
	assert_int_equal(v, 0xffffffff);
	assert_int_equal(a.reads, 0);
	bus_destroy(&bus);
}

static void test_overlaps_and_bad_ranges_refused(void **state)
{
	struct bus bus;
	struct recorder a = { 0 };

	bus_init(&bus, "test");
	assert_int_equal(bus_register(&bus, 0x100, 0x10, &rec_ops, &a, "a"), 0);
	assert_int_equal(bus_register(&bus, 0x10f, 1, &rec_ops, &a, "end"), -EEXIST);
	assert_int_equal(bus_register(&bus, 0xf0, 0x11, &rec_ops, &a, "start"), -EEXIST);
	assert_int_equal(bus_register(&bus, 0x0, 0x1000, &rec_ops, &a, "around"), -EEXIST);
	assert_int_equal(bus_register(&bus, 0x104, 4, &rec_ops, &a, "inside"), -EEXIST);
	assert_int_equal(bus_register(&bus, 0x110, 1, &rec_ops, &a, "after"), 0);
	assert_int_equal(bus_register(&bus, 0xff, 1, &rec_ops, &a, "before"), 0);
	assert_int_equal(bus_register(&bus, 0x200, 0, &rec_ops, &a, "empty"), -EINVAL);
	assert_int_equal(bus_register(&bus, ~0ULL - 1, 4, &rec_ops, &a, "wraps"), -EINVAL);
	assert_int_equal(bus_register(&bus, ~0ULL, 1, &rec_ops, &a, "last byte"), 0);
	assert_int_equal(bus.nr_entries, 4);
	bus_destroy(&bus);
}

static void test_many_devices_sorted(void **state)
{
	struct bus bus;
	struct recorder r[64];
	uint8_t byte;

	memset(r, 0, sizeof(r));
	bus_init(&bus, "test");
	/* Registered in a scrambled order; every lookup must still find its own device. */
	for (int i = 0; i < 64; i++) {
		int k = (i * 37) % 64;

		assert_int_equal(bus_register(&bus, 0x1000 + (uint64_t)k * 0x10, 8, &rec_ops,
					      &r[k], "dev"),
				 0);
	}
	for (int k = 0; k < 64; k++) {
		assert_int_equal(bus_access(&bus, 0x1000 + (uint64_t)k * 0x10 + 7, &byte, 1, false),
				 0);
		assert_int_equal(r[k].reads, 1);
		assert_int_equal(r[k].last_offset, 7);
		assert_int_equal(bus_access(&bus, 0x1000 + (uint64_t)k * 0x10 + 8, &byte, 1, false),
				 -ENOENT);
	}
	assert_int_equal(bus_unregister(&bus, 0x1000 + 5 * 0x10), 0);
	assert_int_equal(bus_access(&bus, 0x1000 + 5 * 0x10, &byte, 1, false), -ENOENT);
	assert_int_equal(bus_unregister(&bus, 0x1000 + 5 * 0x10), -ENOENT);
	bus_destroy(&bus);
}

/* A device whose read blocks until released: unregister must wait for it. */
struct slow {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int inside, release;
};

static void slow_read(void *opaque, uint64_t offset, void *data, uint32_t len)
{
	struct slow *s = opaque;

	pthread_mutex_lock(&s->lock);
	s->inside = 1;
	pthread_cond_broadcast(&s->cond);
	while (!s->release)
		pthread_cond_wait(&s->cond, &s->lock);
	s->inside = 0;
	pthread_mutex_unlock(&s->lock);
	memset(data, 0, len);
}

static const struct bus_device_ops slow_ops = { .read = slow_read };

struct ctx {
	struct bus *bus;
	int done;
};

static void *reader(void *arg)
{
	uint8_t b;

	bus_access(arg, 0x500, &b, 1, false);
	return NULL;
}

static void *unregisterer(void *arg)
{
	struct ctx *c = arg;

	bus_unregister(c->bus, 0x500);
	__atomic_store_n(&c->done, 1, __ATOMIC_SEQ_CST);
	return NULL;
}

static void test_unregister_waits_for_handlers(void **state)
{
	struct bus bus;
	struct slow s = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };
	struct ctx c = { .bus = &bus };
	pthread_t r, u;

	bus_init(&bus, "test");
	assert_int_equal(bus_register(&bus, 0x500, 1, &slow_ops, &s, "slow"), 0);
	pthread_create(&r, NULL, reader, &bus);
	pthread_mutex_lock(&s.lock);
	while (!s.inside)
		pthread_cond_wait(&s.cond, &s.lock);
	pthread_mutex_unlock(&s.lock);

	pthread_create(&u, NULL, unregisterer, &c);
	usleep(50 * 1000);
	/* The reader is still inside the device: unregister must not have returned. */
	assert_int_equal(__atomic_load_n(&c.done, __ATOMIC_SEQ_CST), 0);

	pthread_mutex_lock(&s.lock);
	s.release = 1;
	pthread_cond_broadcast(&s.cond);
	pthread_mutex_unlock(&s.lock);
	pthread_join(r, NULL);
	pthread_join(u, NULL);
	assert_int_equal(c.done, 1);
	assert_int_equal(bus.nr_entries, 0);
	bus_destroy(&bus);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dispatch_by_address),
		cmocka_unit_test(test_unclaimed_reads_all_ones),
		cmocka_unit_test(test_straddling_access_is_not_dispatched),
		cmocka_unit_test(test_overlaps_and_bad_ranges_refused),
		cmocka_unit_test(test_many_devices_sorted),
		cmocka_unit_test(test_unregister_waits_for_handlers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
