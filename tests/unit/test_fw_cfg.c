/* fw_cfg: the items through both register layouts (x86 ports, big-endian MMIO), the file
 * directory, DMA requests (read, skip, select, write refused) including requests at bad guest
 * addresses, lengths that leave RAM or wrap, and unknown selectors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/guest_mem.h"
#include "devices/fw_cfg.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define RAM_SIZE 0x10000
#define REQ	 0x1000 /* where the test puts DMA requests */
#define BUF	 0x2000 /* and where they copy to */

struct fixture {
	struct guest_mem mem;
	struct fw_cfg *f;
};

static int setup(void **state)
{
	static struct fixture fx;
	struct guest_region r = {.gpa = 0, .size = RAM_SIZE};

	memset(&fx, 0, sizeof(fx));
	if (guest_mem_map(&fx.mem, &r, 1))
		return -1;
	fx.f = fw_cfg_create(&fx.mem);
	if (!fx.f)
		return -1;
	*state = &fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;

	fw_cfg_destroy(fx->f);
	guest_mem_unmap(&fx->mem);
	return 0;
}

static void pio_select(struct fw_cfg *f, uint16_t key)
{
	uint8_t b[2] = {key & 0xff, key >> 8}; /* outw: little-endian */

	fw_cfg_pio_ops.write(f, 0, b, 2);
}

static void pio_read(struct fw_cfg *f, void *out, size_t len)
{
	for (size_t i = 0; i < len; i++)
		fw_cfg_pio_ops.read(f, 1, (uint8_t *)out + i, 1);
}

static void mmio_select(struct fw_cfg *f, uint16_t key)
{
	uint8_t b[2] = {key >> 8, key & 0xff}; /* big-endian */

	fw_cfg_mmio_ops.write(f, 8, b, 2);
}

static void put_be(uint8_t *p, uint64_t v, int len)
{
	for (int i = 0; i < len; i++)
		p[i] = (uint8_t)(v >> (8 * (len - 1 - i)));
}

/* Writes a request at REQ, starts it through the x86 ports (high half, then low half) and
 * returns the control word the device wrote back. */
static uint32_t dma(struct fixture *fx, uint32_t control, uint32_t len, uint64_t addr)
{
	uint8_t req[16], hi[4], lo[4];
	uint8_t *back;

	put_be(req, control, 4);
	put_be(req + 4, len, 4);
	put_be(req + 8, addr, 8);
	assert_int_equal(guest_mem_write(&fx->mem, REQ, req, sizeof(req)), 0);
	put_be(hi, 0, 4);
	put_be(lo, REQ, 4);
	fw_cfg_pio_ops.write(fx->f, 4, hi, 4);
	fw_cfg_pio_ops.write(fx->f, 8, lo, 4);
	back = guest_mem_ptr(&fx->mem, REQ, 4);
	return (uint32_t)back[0] << 24 | back[1] << 16 | back[2] << 8 | back[3];
}

static void test_signature_and_id(void **state)
{
	struct fixture *fx = *state;
	char sig[5] = {0};
	uint8_t id[4], dmasig[8];

	pio_select(fx->f, FW_CFG_SIGNATURE);
	pio_read(fx->f, sig, 4);
	assert_string_equal(sig, "QEMU");
	pio_select(fx->f, FW_CFG_ID);
	pio_read(fx->f, id, 4);
	assert_int_equal(id[0], FW_CFG_ID_TRADITIONAL | FW_CFG_ID_DMA);
	assert_int_equal(id[1] | id[2] | id[3], 0);
	/* The DMA register reads "QEMU CFG", on both layouts. */
	fw_cfg_pio_ops.read(fx->f, 4, dmasig, 4);
	fw_cfg_pio_ops.read(fx->f, 8, dmasig + 4, 4);
	assert_memory_equal(dmasig, "QEMU CFG", 8);
	fw_cfg_mmio_ops.read(fx->f, 16, dmasig, 8);
	assert_memory_equal(dmasig, "QEMU CFG", 8);
}

static void test_integers_little_endian(void **state)
{
	struct fixture *fx = *state;
	uint8_t b[8];

	assert_int_equal(fw_cfg_add_u64(fx->f, FW_CFG_RAM_SIZE, 0x0102030405060708ULL), 0);
	assert_int_equal(fw_cfg_add_u16(fx->f, FW_CFG_NB_CPUS, 3), 0);
	pio_select(fx->f, FW_CFG_RAM_SIZE);
	pio_read(fx->f, b, 8);
	assert_int_equal(b[0], 0x08);
	assert_int_equal(b[7], 0x01);
	/* MMIO: the selector is big-endian, the data comes in the item's byte order whatever the
	 * access width. */
	mmio_select(fx->f, FW_CFG_RAM_SIZE);
	fw_cfg_mmio_ops.read(fx->f, 0, b, 4);
	fw_cfg_mmio_ops.read(fx->f, 0, b + 4, 4);
	assert_int_equal(b[0], 0x08);
	assert_int_equal(b[4], 0x04);
	mmio_select(fx->f, FW_CFG_NB_CPUS);
	fw_cfg_mmio_ops.read(fx->f, 0, b, 2);
	assert_int_equal(b[0], 3);
	assert_int_equal(b[1], 0);
	/* A byte-swapped selector is another (unknown) key. */
	pio_select(fx->f, 0x0500);
	pio_read(fx->f, b, 2);
	assert_int_equal(b[0] | b[1], 0);
}

static void test_bad_selectors_read_zero(void **state)
{
	struct fixture *fx = *state;
	uint8_t b[16], zero[16] = {0};
	uint8_t bad_width[1] = {FW_CFG_SIGNATURE};

	pio_select(fx->f, 0x1234);
	memset(b, 0xaa, sizeof(b));
	pio_read(fx->f, b, sizeof(b));
	assert_memory_equal(b, zero, sizeof(b));
	pio_select(fx->f, 0xffff);
	memset(b, 0xaa, sizeof(b));
	pio_read(fx->f, b, sizeof(b));
	assert_memory_equal(b, zero, sizeof(b));
	/* Past an item's end: zeros. */
	pio_select(fx->f, FW_CFG_SIGNATURE);
	pio_read(fx->f, b, 8);
	assert_memory_equal(b, "QEMU\0\0\0\0", 8);
	/* A selector write of the wrong width changes nothing; the write channel flag is
	 * ignored. */
	pio_select(fx->f, 0x1234);
	fw_cfg_pio_ops.write(fx->f, 0, bad_width, 1);
	pio_read(fx->f, b, 1);
	assert_int_equal(b[0], 0);
	pio_select(fx->f, FW_CFG_WRITE_CHANNEL | FW_CFG_SIGNATURE);
	pio_read(fx->f, b, 1);
	assert_int_equal(b[0], 'Q');
	/* Out-of-range MMIO reads. */
	memset(b, 0xaa, 8);
	fw_cfg_mmio_ops.read(fx->f, 3, b, 4);
	assert_memory_equal(b, zero, 4);
}

static void test_file_directory(void **state)
{
	struct fixture *fx = *state;
	uint8_t count[4], entry[64];
	char longname[FW_CFG_MAX_FILE_NAME + 1];
	int k_b, k_a;

	k_b = fw_cfg_add_file(fx->f, "etc/b", "bbbb", 4);
	k_a = fw_cfg_add_file(fx->f, "etc/a", "a", 1);
	assert_int_equal(k_b, FW_CFG_FILE_FIRST);
	assert_int_equal(k_a, FW_CFG_FILE_FIRST + 1);
	assert_int_equal(fw_cfg_add_file(fx->f, "etc/a", "x", 1), -EEXIST);
	assert_int_equal(fw_cfg_add_file(fx->f, "", "x", 1), -EINVAL);
	memset(longname, 'n', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = 0;
	assert_int_equal(fw_cfg_add_file(fx->f, longname, "x", 1), -EINVAL);
	assert_int_equal(fw_cfg_add_bytes(fx->f, FW_CFG_FILE_DIR, "x", 1), -EINVAL);
	assert_int_equal(fw_cfg_add_bytes(fx->f, FW_CFG_FILE_FIRST, "x", 1), -EINVAL);

	pio_select(fx->f, FW_CFG_FILE_DIR);
	pio_read(fx->f, count, 4);
	assert_memory_equal(count, "\0\0\0\2", 4); /* big-endian */
	/* Sorted by name: etc/a first. */
	pio_read(fx->f, entry, 64);
	assert_memory_equal(entry, "\0\0\0\1", 4);
	assert_int_equal(entry[4] << 8 | entry[5], k_a);
	assert_string_equal((char *)entry + 8, "etc/a");
	pio_read(fx->f, entry, 64);
	assert_memory_equal(entry, "\0\0\0\4", 4);
	assert_int_equal(entry[4] << 8 | entry[5], k_b);
	assert_string_equal((char *)entry + 8, "etc/b");

	pio_select(fx->f, (uint16_t)k_b);
	pio_read(fx->f, entry, 4);
	assert_memory_equal(entry, "bbbb", 4);
}

static void test_file_table_full(void **state)
{
	struct fixture *fx = *state;
	char name[16];

	for (int i = 0; i < FW_CFG_MAX_FILES; i++) {
		snprintf(name, sizeof(name), "f%d", i);
		assert_true(fw_cfg_add_file(fx->f, name, "x", 1) >= FW_CFG_FILE_FIRST);
	}
	assert_int_equal(fw_cfg_add_file(fx->f, "one-more", "x", 1), -ENOSPC);
}

static void test_dma_read_skip_select(void **state)
{
	struct fixture *fx = *state;
	uint8_t *buf = guest_mem_ptr(&fx->mem, BUF, 16);
	int key = fw_cfg_add_file(fx->f, "etc/data", "0123456789", 10);

	memset(buf, 0xaa, 16);
	assert_int_equal(dma(fx, (uint32_t)key << 16 | FW_CFG_DMA_CTL_SELECT | FW_CFG_DMA_CTL_READ,
			     4, BUF),
			 0);
	assert_memory_equal(buf, "0123", 4);
	assert_int_equal(buf[4], 0xaa); /* no more than asked */
	assert_int_equal(dma(fx, FW_CFG_DMA_CTL_SKIP, 2, 0), 0);
	/* Reading past the end fills the rest with zeros. */
	assert_int_equal(dma(fx, FW_CFG_DMA_CTL_READ, 8, BUF), 0);
	assert_memory_equal(buf, "6789\0\0\0\0", 8);
	/* The data register goes on from where DMA left off. */
	assert_int_equal(dma(fx, (uint32_t)key << 16 | FW_CFG_DMA_CTL_SELECT | FW_CFG_DMA_CTL_SKIP,
			     9, 0),
			 0);
	pio_read(fx->f, buf, 1);
	assert_int_equal(buf[0], '9');
	/* 64-bit MMIO write of the address does the same. */
	{
		uint8_t req[16], a[8];

		put_be(req, (uint32_t)FW_CFG_SIGNATURE << 16 | FW_CFG_DMA_CTL_SELECT |
				FW_CFG_DMA_CTL_READ,
		       4);
		put_be(req + 4, 4, 4);
		put_be(req + 8, BUF, 8);
		guest_mem_write(&fx->mem, REQ, req, 16);
		put_be(a, REQ, 8);
		fw_cfg_mmio_ops.write(fx->f, 16, a, 8);
		assert_memory_equal(buf, "QEMU", 4);
		assert_memory_equal(guest_mem_ptr(&fx->mem, REQ, 4), "\0\0\0\0", 4);
	}
}

static void test_dma_bad_addresses(void **state)
{
	struct fixture *fx = *state;
	uint8_t *ram = guest_mem_ptr(&fx->mem, 0, RAM_SIZE);
	uint8_t hi[4], lo[4];
	uint32_t sel = (uint32_t)FW_CFG_SIGNATURE << 16 | FW_CFG_DMA_CTL_SELECT | FW_CFG_DMA_CTL_READ;

	/* Beyond RAM, straddling its end, wrapping around 2^64: ERROR, nothing written. */
	assert_int_equal(dma(fx, sel, 4, RAM_SIZE), FW_CFG_DMA_CTL_ERROR);
	memset(ram + RAM_SIZE - 2, 0x55, 2);
	assert_int_equal(dma(fx, sel, 4, RAM_SIZE - 2), FW_CFG_DMA_CTL_ERROR);
	assert_int_equal(ram[RAM_SIZE - 2], 0x55);
	assert_int_equal(dma(fx, sel, 16, UINT64_MAX - 7), FW_CFG_DMA_CTL_ERROR);
	assert_int_equal(dma(fx, sel, UINT32_MAX, BUF), FW_CFG_DMA_CTL_ERROR);
	/* A huge skip is fine and leaves the offset at the end: reads give zeros. */
	assert_int_equal(dma(fx, (sel & ~FW_CFG_DMA_CTL_READ) | FW_CFG_DMA_CTL_SKIP, UINT32_MAX, 0), 0);
	assert_int_equal(dma(fx, FW_CFG_DMA_CTL_SKIP, UINT32_MAX, 0), 0);
	assert_int_equal(dma(fx, FW_CFG_DMA_CTL_READ, 4, BUF), 0);
	assert_memory_equal(ram + BUF, "\0\0\0\0", 4);
	/* No item is writable. */
	assert_int_equal(dma(fx, FW_CFG_DMA_CTL_WRITE, 4, BUF), FW_CFG_DMA_CTL_ERROR);
	/* A request that is not in RAM (or straddles its end) is dropped without a trace. */
	put_be(hi, 0, 4);
	put_be(lo, RAM_SIZE - 8, 4);
	memset(ram + RAM_SIZE - 8, 0x66, 8);
	fw_cfg_pio_ops.write(fx->f, 4, hi, 4);
	fw_cfg_pio_ops.write(fx->f, 8, lo, 4);
	assert_int_equal(ram[RAM_SIZE - 8], 0x66);
	put_be(hi, 0xffffffff, 4);
	put_be(lo, 0xfffffff8, 4);
	fw_cfg_pio_ops.write(fx->f, 4, hi, 4);
	fw_cfg_pio_ops.write(fx->f, 8, lo, 4);
	/* The high half does not stick to the next request. */
	assert_int_equal(dma(fx, sel, 4, BUF), 0);
	assert_memory_equal(ram + BUF, "QEMU", 4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_signature_and_id, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_integers_little_endian, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_selectors_read_zero, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_file_directory, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_file_table_full, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_dma_read_skip_select, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_dma_bad_addresses, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
