/* The device list (base/device.h), the saved-state layout (base/state.h) and the 16550A UART's
 * save/restore, the pattern for the other devices: a save restored into a fresh device gives the
 * same bytes when saved again and the same register behaviour; truncated, garbled and unknown
 * versions of the state are refused with a reason and leave the device as it was. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/device.h"
#include "base/log.h"
#include "base/state.h"
#include "devices/serial_8250.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* --- the state layout --- */

static void test_state_round_trip(void **state)
{
	struct state_writer w;
	struct state_reader r;
	uint8_t u8, bytes[3];
	uint16_t u16, version, tag;
	uint32_t u32;
	uint64_t u64;
	bool b;

	state_writer_init(&w);
	state_begin(&w, 7, 2);
	state_put_u8(&w, 0xab);
	state_put_u16(&w, 0x1234);
	state_put_u32(&w, 0xdeadbeef);
	state_put_u64(&w, 0x0102030405060708ULL);
	state_put_bool(&w, true);
	state_put_bytes(&w, "xyz", 3);
	state_end(&w);
	state_begin(&w, 9, 1);
	state_end(&w);
	assert_int_equal(state_writer_status(&w), 0);
	assert_int_equal(w.len, 2 * STATE_SECTION_HEADER_SIZE + 1 + 2 + 4 + 8 + 1 + 3);
	/* Little-endian header: tag 7, version 2, 19 payload bytes. */
	assert_memory_equal(w.buf, "\x07\x00\x02\x00\x13\x00\x00\x00", 8);

	state_reader_init(&r, w.buf, w.len);
	assert_int_equal(state_peek_tag(&r, &tag), 0);
	assert_int_equal(tag, 7);
	assert_int_equal(state_open(&r, 7, 2, &version), 0);
	assert_int_equal(version, 2);
	assert_int_equal(state_get_u8(&r, &u8), 0);
	assert_int_equal(state_get_u16(&r, &u16), 0);
	assert_int_equal(state_get_u32(&r, &u32), 0);
	assert_int_equal(state_get_u64(&r, &u64), 0);
	assert_int_equal(state_get_bool(&r, &b), 0);
	assert_int_equal(state_get_bytes(&r, bytes, 3), 0);
	assert_int_equal(state_close(&r), 0);
	assert_int_equal(u8, 0xab);
	assert_int_equal(u16, 0x1234);
	assert_int_equal(u32, 0xdeadbeef);
	assert_true(u64 == 0x0102030405060708ULL);
	assert_true(b);
	assert_memory_equal(bytes, "xyz", 3);
	assert_false(state_reader_at_end(&r));
	assert_int_equal(state_open(&r, 9, 1, &version), 0);
	assert_int_equal(state_close(&r), 0);
	assert_true(state_reader_at_end(&r));
	assert_string_equal(state_reader_error(&r), "");
	state_writer_free(&w);
}

static void test_state_refusals(void **state)
{
	struct state_writer w;
	struct state_reader r;
	uint16_t version;
	uint32_t u32;
	bool b;

	state_writer_init(&w);
	state_begin(&w, 3, 1);
	state_put_u32(&w, 5);
	state_put_u8(&w, 2); /* not a boolean */
	state_end(&w);
	assert_int_equal(state_writer_status(&w), 0);

	/* A section a build does not know the version of. */
	state_reader_init(&r, w.buf, w.len);
	assert_int_equal(state_open(&r, 3, 0, &version), -EPROTONOSUPPORT);
	assert_non_null(strstr(state_reader_error(&r), "version 1"));
	/* Sticky: later reads fail too and give zeros. */
	u32 = 77;
	assert_int_equal(state_get_u32(&r, &u32), -EPROTONOSUPPORT);
	assert_int_equal(u32, 0);

	/* Another device's section. */
	state_reader_init(&r, w.buf, w.len);
	assert_int_equal(state_open(&r, 4, 1, &version), -EBADMSG);
	assert_non_null(strstr(state_reader_error(&r), "tag 3"));

	/* A garbled boolean. */
	state_reader_init(&r, w.buf, w.len);
	assert_int_equal(state_open(&r, 3, 1, &version), 0);
	assert_int_equal(state_get_u32(&r, &u32), 0);
	assert_int_equal(state_get_bool(&r, &b), -EBADMSG);
	assert_int_equal(state_close(&r), -EBADMSG);

	/* Bytes left unread in a section. */
	state_reader_init(&r, w.buf, w.len);
	assert_int_equal(state_open(&r, 3, 1, &version), 0);
	assert_int_equal(state_get_u32(&r, &u32), 0);
	assert_int_equal(state_close(&r), -EBADMSG);
	assert_non_null(strstr(state_reader_error(&r), "left unread"));

	/* Reads stop at the section's end even when the stream goes on. */
	state_begin(&w, 3, 1);
	state_end(&w);
	state_reader_init(&r, w.buf, w.len);
	assert_int_equal(state_open(&r, 3, 1, &version), 0);
	assert_int_equal(state_get_u32(&r, &u32), 0);
	assert_int_equal(state_get_u32(&r, &u32), -EBADMSG);
	assert_non_null(strstr(state_reader_error(&r), "truncated"));

	/* Every truncation of the stream is refused. */
	for (size_t len = 0; len < w.len - STATE_SECTION_HEADER_SIZE; len++) {
		state_reader_init(&r, w.buf, len);
		state_open(&r, 3, 1, &version);
		state_get_u32(&r, &u32);
		state_get_u8(&r, (uint8_t *)&b);
		state_close(&r);
		assert_int_equal(state_reader_status(&r), -EBADMSG);
	}

	/* Reads outside a section, and unbalanced writers. */
	state_reader_init(&r, w.buf, w.len);
	assert_int_equal(state_get_u32(&r, &u32), -EINVAL);
	state_begin(&w, 1, 1);
	assert_int_equal(state_writer_status(&w), -EINVAL); /* still open */
	state_begin(&w, 1, 1);
	assert_int_equal(state_writer_status(&w), -EINVAL); /* begun twice */
	state_writer_free(&w);
	state_writer_init(&w);
	state_end(&w);
	assert_int_equal(state_writer_status(&w), -EINVAL);
	state_writer_free(&w);
}

/* --- the device list --- */

struct fake_dev {
	struct vm_device dev;
	int resets;
	int *destroyed; /* order log */
	int *nr_destroyed;
	int number;
};

static void fake_destroy(struct vm_device *dev)
{
	struct fake_dev *f = (struct fake_dev *)dev;

	f->destroyed[(*f->nr_destroyed)++] = f->number;
}

static void fake_reset(struct vm_device *dev)
{
	((struct fake_dev *)dev)->resets++;
}

static const struct vm_device_ops plain_ops = {.name = "plain", .destroy = fake_destroy};
static const struct vm_device_ops resettable_ops = {
    .name = "resettable", .destroy = fake_destroy, .reset = fake_reset};

static void test_device_list(void **state)
{
	struct vm_devices list = {0};
	struct fake_dev d[4];
	int order[4], nr = 0;
	struct vm_device *it;
	int i = 0;

	for (int k = 0; k < 4; k++) {
		d[k] = (struct fake_dev){.destroyed = order, .nr_destroyed = &nr, .number = k};
		vm_device_init(&d[k].dev, k < 2 ? VM_DEVICE_VIRTIO_BLK : VM_DEVICE_RTC_CMOS,
			       k % 2 ? &resettable_ops : &plain_ops, k == 1 ? "scratch" : NULL);
		vm_device_add(&list, &d[k].dev);
	}
	assert_int_equal(list.nr, 4);
	vm_devices_for_each(&list, it)
		assert_ptr_equal(it, &d[i++].dev);
	assert_ptr_equal(vm_device_find(&list, VM_DEVICE_VIRTIO_BLK, "scratch"), &d[1].dev);
	assert_ptr_equal(vm_device_find(&list, VM_DEVICE_VIRTIO_BLK, NULL), &d[0].dev);
	assert_ptr_equal(vm_device_find(&list, VM_DEVICE_RTC_CMOS, NULL), &d[2].dev);
	assert_null(vm_device_find(&list, VM_DEVICE_RTC_CMOS, "scratch"));
	assert_null(vm_device_find(&list, VM_DEVICE_PL061, NULL));
	assert_string_equal(vm_device_label(&d[1].dev), "scratch");
	assert_string_equal(vm_device_label(&d[0].dev), "plain");

	/* Missing ops say so. */
	assert_null(vm_device_stats(&d[0].dev));
	assert_int_equal(vm_device_save(&d[0].dev, NULL), -ENOTSUP);
	assert_int_equal(vm_device_restore(&d[0].dev, NULL), -ENOTSUP);
	assert_int_equal(vm_device_update(&d[1].dev, &(struct vm_device_update){0}), -ENOTSUP);
	assert_non_null(strstr(log_last_error(), "resettable scratch"));

	vm_devices_reset(&list);
	assert_int_equal(d[1].resets, 1);
	assert_int_equal(d[3].resets, 1);

	/* Teardown: the last created first. */
	vm_devices_destroy(&list);
	assert_int_equal(nr, 4);
	for (int k = 0; k < 4; k++)
		assert_int_equal(order[k], 3 - k);
	assert_null(list.first);
	assert_int_equal(list.nr, 0);
}

/* --- the UART's state --- */

struct fake_irq {
	bool level;
	int calls;
};

static void fake_set_level(void *ctx, uint32_t gsi, bool level)
{
	struct fake_irq *f = ctx;

	f->level = level;
	f->calls++;
}

static uint8_t rd(struct serial_8250 *s, uint64_t reg)
{
	uint8_t v = 0xa5;

	serial_8250_ops.read(s, reg, &v, 1);
	return v;
}

static void wr(struct serial_8250 *s, uint64_t reg, uint8_t v)
{
	serial_8250_ops.write(s, reg, &v, 1);
}

static void save(struct serial_8250 *s, struct state_writer *w)
{
	state_writer_init(w);
	assert_int_equal(vm_device_save(serial_8250_device(s), w), 0);
}

static int restore(struct serial_8250 *s, const void *buf, size_t len, struct state_reader *r)
{
	state_reader_init(r, buf, len);
	return vm_device_restore(serial_8250_device(s), r);
}

/* A UART the way Linux leaves one, with input waiting and a modem-status change latched. */
static struct serial_8250 *busy_uart(void)
{
	struct serial_8250 *s = serial_8250_create(NULL, -1);

	assert_non_null(s);
	wr(s, 3, 0x80); /* DLAB */
	wr(s, 0, 0x01);
	wr(s, 1, 0x00);
	wr(s, 3, 0x03); /* 8N1 */
	wr(s, 2, 0xc1); /* FIFO on, trigger at 14 */
	wr(s, 4, 0x1b); /* loopback with DTR, RTS, OUT2: latches modem deltas */
	wr(s, 4, 0x0b); /* back out of loopback */
	wr(s, 7, 0x5a);
	wr(s, 1, 0x0d); /* RX data, line status and modem status interrupts */
	assert_int_equal(serial_8250_receive(s, (const uint8_t *)"hello", 5), 5);
	return s;
}

static void test_uart_round_trip(void **state)
{
	struct fake_irq irq = {0};
	struct irq_line line = {.set_level = fake_set_level, .ctx = &irq, .gsi = 4};
	struct serial_8250 *a = busy_uart(), *b = serial_8250_create(&line, -1);
	struct state_writer wa, wb;
	struct state_reader r;

	save(a, &wa);
	assert_int_equal(restore(b, wa.buf, wa.len, &r), 0);
	assert_true(state_reader_at_end(&r));
	/* The restored UART raises its line: data is waiting and enabled. */
	assert_true(irq.level);
	save(b, &wb);
	assert_int_equal(wb.len, wa.len);
	assert_memory_equal(wb.buf, wa.buf, wa.len);

	/* Both behave alike, register by register, to the last byte received. */
	for (int reg = 1; reg < 8; reg++)
		assert_int_equal(rd(a, (uint64_t)reg), rd(b, (uint64_t)reg));
	for (int i = 0; i < 6; i++) {
		assert_int_equal(rd(a, 5), rd(b, 5)); /* LSR: data ready */
		assert_int_equal(rd(a, 0), rd(b, 0)); /* RBR */
	}
	assert_int_equal(rd(b, 5) & 0x01, 0);
	wr(a, 3, 0x83);
	wr(b, 3, 0x83);
	assert_int_equal(rd(a, 0), 0x01); /* DLL */
	assert_int_equal(rd(b, 0), 0x01);
	assert_int_equal(rd(a, 1), rd(b, 1));

	/* A reset UART saves as a fresh one. */
	vm_devices_reset(&(struct vm_devices){
	    .first = serial_8250_device(a), .last = serial_8250_device(a), .nr = 1});
	state_writer_free(&wa);
	state_writer_free(&wb);
	save(a, &wa);
	serial_8250_destroy(b);
	b = serial_8250_create(NULL, -1);
	save(b, &wb);
	assert_int_equal(wa.len, wb.len);
	assert_memory_equal(wa.buf, wb.buf, wa.len);
	state_writer_free(&wa);
	state_writer_free(&wb);
	serial_8250_destroy(a);
	serial_8250_destroy(b);
}

/* A refused restore leaves the device exactly as it was. */
static void assert_refused(const void *buf, size_t len, int err)
{
	struct serial_8250 *s = busy_uart();
	struct state_writer before, after;
	struct state_reader r;

	save(s, &before);
	assert_int_equal(restore(s, buf, len, &r), err);
	assert_true(state_reader_error(&r)[0] != '\0');
	save(s, &after);
	assert_int_equal(before.len, after.len);
	assert_memory_equal(before.buf, after.buf, before.len);
	state_writer_free(&before);
	state_writer_free(&after);
	serial_8250_destroy(s);
}

static void test_uart_refuses_bad_state(void **state)
{
	struct serial_8250 *a = busy_uart();
	struct state_writer w;
	uint8_t *bad;

	save(a, &w);
	bad = malloc(w.len + 1);
	assert_non_null(bad);

	for (size_t len = 0; len < w.len; len++)
		assert_refused(w.buf, len, -EBADMSG);

	memcpy(bad, w.buf, w.len);
	bad[2] = 2; /* version 2: not known to this build */
	assert_refused(bad, w.len, -EPROTONOSUPPORT);
	bad[2] = 0;
	assert_refused(bad, w.len, -EPROTONOSUPPORT);

	memcpy(bad, w.buf, w.len);
	bad[0] = VM_DEVICE_RTC_CMOS; /* another device's section */
	assert_refused(bad, w.len, -EBADMSG);

	memcpy(bad, w.buf, w.len);
	bad[STATE_SECTION_HEADER_SIZE + 0] = 0xff; /* IER bits no 16550A has */
	assert_refused(bad, w.len, -EBADMSG);

	memcpy(bad, w.buf, w.len);
	bad[STATE_SECTION_HEADER_SIZE + 9] = 7; /* thr_empty_pending: not a boolean */
	assert_refused(bad, w.len, -EBADMSG);

	memcpy(bad, w.buf, w.len);
	memcpy(bad + STATE_SECTION_HEADER_SIZE + 10, "\xff\xff\x00\x00", 4); /* 65535 rx bytes */
	assert_refused(bad, w.len, -EBADMSG);

	memcpy(bad, w.buf, w.len);
	bad[w.len] = 0; /* a byte more in the section than version 1 has */
	bad[4]++;
	assert_refused(bad, w.len + 1, -EBADMSG);

	/* Random damage: refused or taken, never a crash or a read out of bounds (ASan). */
	srand(10);
	for (int i = 0; i < 2000; i++) {
		struct serial_8250 *s = serial_8250_create(NULL, -1);
		struct state_reader r;
		int ret;

		memcpy(bad, w.buf, w.len);
		for (int k = 0; k < 1 + i % 4; k++)
			bad[(size_t)rand() % w.len] = (uint8_t)rand();
		ret = restore(s, bad, w.len, &r);
		assert_true(ret == 0 || ret == -EBADMSG || ret == -EPROTONOSUPPORT);
		serial_8250_destroy(s);
	}
	free(bad);
	state_writer_free(&w);
	serial_8250_destroy(a);
}

/* A list's state is its devices' sections in order; a list built alike takes it back. */
static void test_list_save_restore(void **state)
{
	struct serial_8250 *a = busy_uart(), *b = serial_8250_create(NULL, -1);
	struct serial_8250 *c = serial_8250_create(NULL, -1), *d = serial_8250_create(NULL, -1);
	struct vm_devices from = {0}, to = {0};
	struct state_writer w, again;
	struct state_reader r;

	wr(b, 7, 0x42); /* a different scratch value in the second UART */
	vm_device_add(&from, serial_8250_device(a));
	vm_device_add(&from, serial_8250_device(b));
	vm_device_add(&to, serial_8250_device(c));
	vm_device_add(&to, serial_8250_device(d));
	state_writer_init(&w);
	assert_int_equal(vm_devices_save(&from, &w), 0);
	state_reader_init(&r, w.buf, w.len);
	assert_int_equal(vm_devices_restore(&to, &r), 0);
	assert_int_equal(rd(d, 7), 0x42);
	assert_int_equal(rd(c, 7), 0x5a);
	state_writer_init(&again);
	assert_int_equal(vm_devices_save(&to, &again), 0);
	assert_int_equal(again.len, w.len);
	assert_memory_equal(again.buf, w.buf, w.len);

	/* Bytes after the last device's section are refused. */
	state_put_u8(&w, 0);
	state_reader_init(&r, w.buf, w.len);
	assert_int_equal(vm_devices_restore(&to, &r), -EBADMSG);
	assert_non_null(strstr(state_reader_error(&r), "after the last device"));

	state_writer_free(&w);
	state_writer_free(&again);
	vm_devices_destroy(&from);
	vm_devices_destroy(&to);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_state_round_trip),
	    cmocka_unit_test(test_state_refusals),
	    cmocka_unit_test(test_device_list),
	    cmocka_unit_test(test_uart_round_trip),
	    cmocka_unit_test(test_uart_refuses_bad_state),
	    cmocka_unit_test(test_list_save_restore),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
