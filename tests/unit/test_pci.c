/* The PCI host bridge and a function's config space, driven as Linux walks them: mechanism #1
 * probing and reads through ports 0xcf8/0xcfc, the same bytes through ECAM, the capability list,
 * BAR sizing, decoding that follows COMMAND and BAR moves, and hostile accesses that get safe
 * answers (all ones, nothing changed). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "bus/bus.h"
#include "pci/host.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define ECAM	 0xe0000000ULL
#define WIN	 0xc0000000ULL
#define WIN_SIZE 0x01000000ULL

struct fx {
	struct bus mmio, pio;
	struct pci_host host;
	struct pci_device dev;
	int bar_reads, mapped_events, unmapped_events;
	uint64_t last_mapped;
};

static void bar_read(void *opaque, uint64_t off, void *data, uint32_t len)
{
	struct fx *f = opaque;

	f->bar_reads++;
	memset(data, 0x5a, len);
}

static void bar_write(void *opaque, uint64_t off, const void *data, uint32_t len)
{
}

static const struct bus_device_ops bar_ops = {.read = bar_read, .write = bar_write};

static void on_bar(struct pci_device *d, int bar, bool mapped, uint64_t addr)
{
	struct fx *f = d->priv;

	if (mapped) {
		f->mapped_events++;
		f->last_mapped = addr;
	} else {
		f->unmapped_events++;
	}
}

static const struct pci_device_ops dev_ops = {.bar_mapped = on_bar};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct pci_host_params p = {
	    .ecam_base = ECAM, .ecam_size = 0x100000, .mmio_base = WIN, .mmio_size = WIN_SIZE};
	uint8_t vndr[6] = {8, 1, 2, 3, 4, 5}, msix[10] = {0};

	bus_init(&f->mmio, "mmio");
	bus_init(&f->pio, "pio");
	p.mmio = &f->mmio;
	p.pio = &f->pio;
	if (pci_host_init(&f->host, &p))
		return -1;
	pci_device_init(&f->dev, "test fn", 0x1af4, 0x1042, 1, 0x018000, 0x1af4, 0x0002);
	f->dev.ops = &dev_ops;
	f->dev.priv = f;
	assert_int_equal(pci_device_add_cap(&f->dev, PCI_CAP_ID_VNDR, vndr, sizeof(vndr)), 0x40);
	assert_int_equal(pci_device_add_cap(&f->dev, PCI_CAP_ID_MSIX, msix, sizeof(msix)), 0x48);
	pci_device_set_bar(&f->dev, 0, 0x4000, &bar_ops, f);
	pci_device_set_bar(&f->dev, 2, 0x1000, &bar_ops, f);
	if (pci_host_add(&f->host, &f->dev))
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	pci_host_remove(&f->host, &f->dev);
	pci_host_destroy(&f->host);
	assert_int_equal(f->mmio.nr_entries, 0);
	assert_int_equal(f->pio.nr_entries, 0);
	bus_destroy(&f->mmio);
	bus_destroy(&f->pio);
	free(f);
	return 0;
}

static void cf8_set(struct fx *f, uint32_t v)
{
	assert_int_equal(bus_access(&f->pio, 0xcf8, &v, 4, true), 0);
}

static uint32_t cf8(struct fx *f, uint8_t bus, uint8_t dev, uint8_t fn, uint32_t reg, uint32_t len)
{
	uint32_t v = 0;

	cf8_set(f, PCI_CF8_ENABLE | bus << 16 | dev << 11 | fn << 8 | (reg & 0xfc));
	bus_access(&f->pio, 0xcfc + (reg & 3), &v, len, false);
	return v;
}

static void cf8_write(struct fx *f, uint8_t dev, uint32_t reg, uint32_t v, uint32_t len)
{
	cf8_set(f, PCI_CF8_ENABLE | dev << 11 | (reg & 0xfc));
	bus_access(&f->pio, 0xcfc + (reg & 3), &v, len, true);
}

static uint64_t ecam_addr(uint8_t dev, uint8_t fn, uint32_t reg)
{
	return ECAM + ((uint64_t)dev << 15) + ((uint64_t)fn << 12) + reg;
}

static uint32_t ecam(struct fx *f, uint8_t dev, uint32_t reg, uint32_t len)
{
	uint32_t v = 0;

	bus_access(&f->mmio, ecam_addr(dev, 0, reg), &v, len, false);
	return v;
}

static void ecam_write(struct fx *f, uint8_t dev, uint32_t reg, uint32_t v, uint32_t len)
{
	bus_access(&f->mmio, ecam_addr(dev, 0, reg), &v, len, true);
}

/* Linux's pci_check_type1() and pci_sanity_check(), then a scan of bus 0. */
static void test_cf8_probe_and_scan(void **state)
{
	struct fx *f = *state;
	uint8_t b = 1;
	uint32_t v = 0;

	cf8_set(f, 0x12345678);
	/* A byte write to 0xcfb changes nothing; a dword write reads back (reserved bits 0). */
	assert_int_equal(bus_access(&f->pio, 0xcfb, &b, 1, true), 0);
	bus_access(&f->pio, 0xcf8, &v, 4, false);
	assert_int_equal(v, 0x12345678 & 0x80fffffc);
	cf8_set(f, PCI_CF8_ENABLE);
	bus_access(&f->pio, 0xcf8, &v, 4, false);
	assert_int_equal(v, PCI_CF8_ENABLE);

	/* 00:00.0 is a host bridge; 00:01.0 the function; nothing else anywhere. */
	assert_int_equal(cf8(f, 0, 0, 0, PCI_REVISION_ID, 4) >> 8, PCI_CLASS_BRIDGE_HOST);
	assert_int_equal(cf8(f, 0, 0, 0, PCI_VENDOR_ID, 4), 0x00081b36);
	assert_int_equal(cf8(f, 0, 1, 0, PCI_VENDOR_ID, 4), 0x10421af4);
	assert_int_equal(cf8(f, 0, 1, 0, PCI_VENDOR_ID, 2), 0x1af4);
	assert_int_equal(cf8(f, 0, 1, 0, PCI_DEVICE_ID, 2), 0x1042);
	assert_int_equal(cf8(f, 0, 1, 0, PCI_REVISION_ID, 1), 1);
	assert_int_equal(cf8(f, 0, 1, 0, PCI_SUBSYS_ID, 2), 0x0002);
	assert_int_equal(cf8(f, 0, 1, 0, PCI_HEADER_TYPE, 1), 0);
	assert_int_equal(cf8(f, 0, 1, 0, PCI_INTERRUPT_PIN, 1), 0);
	assert_int_equal(cf8(f, 0, 2, 0, PCI_VENDOR_ID, 4), 0xffffffff);
	assert_int_equal(cf8(f, 0, 1, 1, PCI_VENDOR_ID, 4), 0xffffffff);
	assert_int_equal(cf8(f, 1, 1, 0, PCI_VENDOR_ID, 4), 0xffffffff);
	/* Without the enable bit the data port reads all ones. */
	cf8_set(f, 1 << 11);
	v = 0;
	bus_access(&f->pio, 0xcfc, &v, 4, false);
	assert_int_equal(v, 0xffffffff);
}

/* ECAM and mechanism #1 show the same 256 bytes; ECAM's extended space is empty. */
static void test_ecam_matches_cf8(void **state)
{
	struct fx *f = *state;

	for (uint8_t dev = 0; dev < 3; dev++)
		for (uint32_t reg = 0; reg < PCI_CONFIG_SIZE; reg += 4)
			assert_int_equal(ecam(f, dev, reg, 4), cf8(f, 0, dev, 0, reg, 4));
	for (uint32_t reg = 0; reg < PCI_CONFIG_SIZE; reg++)
		assert_int_equal(ecam(f, 1, reg, 1), cf8(f, 0, 1, 0, reg, 1));
	assert_int_equal(ecam(f, 1, 0x100, 4), 0);
	assert_int_equal(ecam(f, 1, 0xffc, 4), 0);
	assert_int_equal(ecam(f, 5, 0x100, 4), 0xffffffff);
	/* A write through one is seen through the other. */
	cf8_write(f, 1, PCI_INTERRUPT_LINE, 0x0a, 1);
	assert_int_equal(ecam(f, 1, PCI_INTERRUPT_LINE, 1), 0x0a);
}

/* As Linux's pci_find_capability(): the status bit, the pointer, a chain that ends. */
static void test_capability_list(void **state)
{
	struct fx *f = *state;
	uint8_t ids[8], n = 0;
	uint8_t pos;

	assert_true(ecam(f, 1, PCI_STATUS, 2) & PCI_STATUS_CAP_LIST);
	pos = (uint8_t)ecam(f, 1, PCI_CAP_PTR, 1);
	while (pos && n < 8) {
		assert_true(pos >= PCI_CAPS_START && (pos & 3) == 0);
		ids[n++] = (uint8_t)ecam(f, 1, pos, 1);
		pos = (uint8_t)ecam(f, 1, pos + 1u, 1);
	}
	assert_int_equal(n, 2);
	assert_int_equal(ids[0], PCI_CAP_ID_VNDR);
	assert_int_equal(ids[1], PCI_CAP_ID_MSIX);
	assert_int_equal(ecam(f, 1, 0x44, 4), 0x05040302);
	/* Capabilities are read-only unless the device says otherwise. */
	ecam_write(f, 1, 0x44, 0xffffffff, 4);
	assert_int_equal(ecam(f, 1, 0x44, 4), 0x05040302);
	/* The host bridge has none. */
	assert_false(ecam(f, 0, PCI_STATUS, 2) & PCI_STATUS_CAP_LIST);
}

/* Sizing (all ones, read back the mask), decoding under COMMAND's memory bit, moves. */
static void test_bar_sizing_and_decoding(void **state)
{
	struct fx *f = *state;
	uint32_t bar0 = ecam(f, 1, PCI_BAR0, 4), bar2 = ecam(f, 1, PCI_BAR0 + 8, 4);
	uint8_t buf[4];

	/* Placed in the window, aligned to their sizes, not overlapping. */
	assert_true(bar0 >= WIN && bar0 + 0x4000 <= WIN + WIN_SIZE && !(bar0 & 0x3fff));
	assert_true(bar2 >= WIN && !(bar2 & 0xfff) &&
		    (bar2 >= bar0 + 0x4000 || bar2 + 0x1000 <= bar0));
	/* Linux's __pci_read_base: memory decoding off, write ones, read the size, restore. */
	ecam_write(f, 1, PCI_BAR0, 0xffffffff, 4);
	assert_int_equal(ecam(f, 1, PCI_BAR0, 4), 0xffffc000);
	ecam_write(f, 1, PCI_BAR0, bar0, 4);
	ecam_write(f, 1, PCI_BAR0 + 4, 0xffffffff, 4); /* no BAR 1 */
	assert_int_equal(ecam(f, 1, PCI_BAR0 + 4, 4), 0);
	ecam_write(f, 1, PCI_ROM_ADDRESS, 0xfffff800, 4); /* no ROM */
	assert_int_equal(ecam(f, 1, PCI_ROM_ADDRESS, 4), 0);
	assert_int_equal(f->mapped_events, 0);
	assert_int_equal(bus_access(&f->mmio, bar0, buf, 4, false), -ENOENT);

	ecam_write(f, 1, PCI_COMMAND, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER, 2);
	assert_int_equal(ecam(f, 1, PCI_COMMAND, 2), PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
	assert_int_equal(f->mapped_events, 2);
	assert_int_equal(bus_access(&f->mmio, bar0 + 0x3ffc, buf, 4, false), 0);
	assert_int_equal(f->bar_reads, 1);

	/* The guest moves BAR 0 while decoding: the old place is gone, the new one answers. */
	ecam_write(f, 1, PCI_BAR0, (uint32_t)WIN + 0x800000, 4);
	assert_int_equal(f->last_mapped, WIN + 0x800000);
	assert_int_equal(bus_access(&f->mmio, bar0, buf, 4, false), -ENOENT);
	assert_int_equal(bus_access(&f->mmio, WIN + 0x800000, buf, 4, false), 0);
	/* Outside the window or onto another BAR: not decoded. */
	ecam_write(f, 1, PCI_BAR0, 0x10000000, 4);
	assert_int_equal(bus_access(&f->mmio, 0x10000000, buf, 4, false), -ENOENT);
	ecam_write(f, 1, PCI_BAR0, bar2 & ~0x3fffu, 4);
	assert_int_equal(bus_access(&f->mmio, bar2 & ~0x3fffu, buf, 4, false),
			 (bar2 & ~0x3fffu) == bar2 ? 0 : -ENOENT);
	ecam_write(f, 1, PCI_BAR0, bar0, 4);
	assert_int_equal(bus_access(&f->mmio, bar0, buf, 4, false), 0);

	/* Memory decoding off: both BARs go. */
	ecam_write(f, 1, PCI_COMMAND, 0, 2);
	assert_int_equal(bus_access(&f->mmio, bar0, buf, 4, false), -ENOENT);
	assert_int_equal(bus_access(&f->mmio, bar2, buf, 4, false), -ENOENT);
	assert_int_equal(f->mapped_events, f->unmapped_events);
}

/* Widths, alignment and registers the guest may not change. */
static void test_hostile_accesses(void **state)
{
	struct fx *f = *state;
	uint64_t v8 = 0;
	uint32_t v = 0;

	/* 8 bytes, unaligned 2 and 4 bytes: all ones, and writes change nothing. */
	bus_access(&f->mmio, ecam_addr(1, 0, 0), &v8, 8, false);
	assert_true(v8 == ~0ULL);
	assert_int_equal(ecam(f, 1, 1, 2), 0xffff);
	assert_int_equal(ecam(f, 1, 2, 4), 0xffffffff);
	assert_int_equal(ecam(f, 1, 3, 2), 0xffff);
	ecam_write(f, 1, PCI_COMMAND + 1, 0xffff, 2);
	ecam_write(f, 1, PCI_COMMAND - 2, 0xffffffff, 4);
	v8 = ~0ULL;
	bus_access(&f->mmio, ecam_addr(1, 0, PCI_COMMAND), &v8, 8, true);
	assert_int_equal(ecam(f, 1, PCI_COMMAND, 2), 0);
	/* Through 0xcfc: 0xcfd with 2 bytes is unaligned, 0xcfe is not. */
	cf8_set(f, PCI_CF8_ENABLE | 1 << 11);
	bus_access(&f->pio, 0xcfd, &v, 2, false);
	assert_int_equal(v & 0xffff, 0xffff);
	v = 0;
	bus_access(&f->pio, 0xcfe, &v, 2, false);
	assert_int_equal(v, 0x1042);
	/* Read-only header fields. */
	ecam_write(f, 1, PCI_VENDOR_ID, 0, 4);
	ecam_write(f, 1, PCI_CLASS_PROG - 1, 0, 4);
	ecam_write(f, 1, PCI_HEADER_TYPE, 0x80, 1);
	ecam_write(f, 1, PCI_STATUS, 0, 2);
	assert_int_equal(ecam(f, 1, PCI_VENDOR_ID, 4), 0x10421af4);
	assert_int_equal(ecam(f, 1, PCI_REVISION_ID, 4) >> 8, 0x018000);
	assert_int_equal(ecam(f, 1, PCI_HEADER_TYPE, 1), 0);
	assert_true(ecam(f, 1, PCI_STATUS, 2) & PCI_STATUS_CAP_LIST);
	/* COMMAND keeps only the bits it has. */
	ecam_write(f, 1, PCI_COMMAND, 0xffff, 2);
	assert_int_equal(ecam(f, 1, PCI_COMMAND, 2), PCI_COMMAND_IO | PCI_COMMAND_MEMORY |
							 PCI_COMMAND_MASTER | PCI_COMMAND_SERR |
							 PCI_COMMAND_INTX_OFF);
	ecam_write(f, 1, PCI_COMMAND, 0, 2);
	/* Writes to absent functions and extended space go nowhere. */
	ecam_write(f, 7, PCI_COMMAND, 0xffff, 2);
	ecam_write(f, 1, 0x100, 0xffffffff, 4);
	assert_int_equal(ecam(f, 1, 0x100, 4), 0);
	/* The interrupt line is the guest's scratch byte. */
	ecam_write(f, 1, PCI_INTERRUPT_LINE, 0x0b, 1);
	assert_int_equal(ecam(f, 1, PCI_INTERRUPT_LINE, 1), 0x0b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_cf8_probe_and_scan, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ecam_matches_cf8, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_capability_list, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bar_sizing_and_decoding, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_hostile_accesses, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
