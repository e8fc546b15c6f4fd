/* The virtio-pci transport's MSI-X, driven as Linux's driver does through config space and BAR 0:
 * a config-change interrupt reaches the vector's eventfd only while MSI-X is enabled, the function
 * and the entry are unmasked and bus mastering is on; otherwise it waits in the PBA and is sent
 * on unmasking. An entry whose address no interrupt controller takes is refused. Also: the
 * capability list a driver looks for, a vector beyond the table, the ISR read-to-clear. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "pci/host.h"
#include "virtio/core.h"
#include "virtio/pci.h"
#include "virtio/virtio.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ECAM 0xe0000000ULL
#define WIN  0xc0000000ULL

struct fake_msi {
	int sets, refused;
	uint64_t addr;
	uint32_t data, rid;
};

static int msi_add(void *ctx, int fd)
{
	return 7;
}

static int msi_set(void *ctx, int id, uint64_t addr, uint32_t data, uint32_t rid)
{
	struct fake_msi *m = ctx;

	if ((addr >> 20) != 0xfee) {
		m->refused++;
		return -EINVAL;
	}
	m->sets++;
	m->addr = addr;
	m->data = data;
	m->rid = rid;
	return 0;
}

static void msi_remove(void *ctx, int id)
{
}

static const struct msi_routes_ops fake_ops = {msi_add, msi_set, msi_remove};

static void nop_notify(struct virtio_device *dev, uint16_t q)
{
}
static void nop_destroy(struct virtio_device *dev)
{
}

static const struct virtio_device_ops dev_ops = {
    .device_id = VIRTIO_ID_RNG,
    .nr_queues = 1,
    .queue_max_size = 64,
    .queue_notify = nop_notify,
    .destroy = nop_destroy,
};

struct fx {
	struct guest_mem mem;
	struct bus mmio;
	struct pci_host host;
	struct virtio_device dev;
	struct fake_msi fake;
	struct msi_routes msi;
	struct virtio_pci *t;
	uint64_t bar;
	uint8_t msix;
};

static uint32_t cfg_read(struct fx *f, uint32_t reg, uint32_t len)
{
	uint32_t v = 0;

	bus_access(&f->mmio, ECAM + (1 << 15) + reg, &v, len, false);
	return v;
}

static void cfg_write(struct fx *f, uint32_t reg, uint32_t v, uint32_t len)
{
	bus_access(&f->mmio, ECAM + (1 << 15) + reg, &v, len, true);
}

static uint32_t bar_read(struct fx *f, uint64_t off, uint32_t len)
{
	uint32_t v = 0;

	assert_int_equal(bus_access(&f->mmio, f->bar + off, &v, len, false), 0);
	return v;
}

static void bar_write(struct fx *f, uint64_t off, uint32_t v, uint32_t len)
{
	assert_int_equal(bus_access(&f->mmio, f->bar + off, &v, len, true), 0);
}

static bool fired(struct fx *f, uint16_t vector)
{
	struct pollfd p = {.fd = virtio_pci_vector_eventfd(f->t, vector), .events = POLLIN};
	uint64_t n;

	if (poll(&p, 1, 200) != 1)
		return false;
	assert_int_equal(read(p.fd, &n, sizeof(n)), sizeof(n));
	return true;
}

static int setup(void **state)
{
	struct guest_region layout[] = {{.gpa = 0, .size = 0x100000}};
	struct pci_host_params hp = {
	    .ecam_base = ECAM, .ecam_size = 0x100000, .mmio_base = WIN, .mmio_size = 0x1000000};
	struct fx *f = calloc(1, sizeof(*f));
	struct virtio_pci_params p;

	if (!f || guest_mem_map(&f->mem, layout, 1))
		return -1;
	bus_init(&f->mmio, "mmio");
	hp.mmio = &f->mmio;
	if (pci_host_init(&f->host, &hp))
		return -1;
	f->dev.ops = &dev_ops;
	strcpy(f->dev.name, "virtio-test");
	f->msi = (struct msi_routes){.ops = &fake_ops, .ctx = &f->fake};
	p = (struct virtio_pci_params){
	    .host = &f->host, .vm_fd = -1, .mem = &f->mem, .msi = &f->msi};
	f->t = virtio_pci_create(&p, &f->dev);
	if (!f->t)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	virtio_pci_destroy(f->t);
	pci_host_destroy(&f->host);
	assert_int_equal(f->mmio.nr_entries, 0);
	bus_destroy(&f->mmio);
	guest_mem_unmap(&f->mem);
	free(f);
	return 0;
}

/* What virtio_pci_modern's probe and vp_find_vqs_msix do before the first interrupt. */
static void bring_up(struct fx *f)
{
	uint8_t types = 0, pos;

	assert_int_equal(cfg_read(f, PCI_VENDOR_ID, 4), 0x10441af4);
	assert_int_equal(cfg_read(f, PCI_REVISION_ID, 1), 1);
	for (pos = (uint8_t)cfg_read(f, PCI_CAP_PTR, 1); pos;
	     pos = (uint8_t)cfg_read(f, pos + 1u, 1)) {
		if (cfg_read(f, pos, 1) == PCI_CAP_ID_MSIX)
			f->msix = pos;
		else if (cfg_read(f, pos, 1) == PCI_CAP_ID_VNDR)
			types |= 1 << cfg_read(f, pos + 3u, 1); /* cfg_type */
	}
	/* common, notify, ISR, PCI config access; no device config (config_size 0); MSI-X with 2
	 * vectors. */
	assert_int_equal(types, 1 << 1 | 1 << 2 | 1 << 3 | 1 << 5);
	assert_int_not_equal(f->msix, 0);
	assert_int_equal(cfg_read(f, f->msix + 2u, 2) & 0x7ff, 1);
	f->bar = cfg_read(f, PCI_BAR0, 4) & ~0xfULL;
	cfg_write(f, PCI_COMMAND, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER, 2);

	/* MSI-X on with the function masked, entry 0 programmed and unmasked, then unmask all. */
	cfg_write(f, f->msix + 2u, PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL, 2);
	bar_write(f, VIRTIO_PCI_MSIX_TABLE + 0, 0xfee00000, 4);
	bar_write(f, VIRTIO_PCI_MSIX_TABLE + 4, 0, 4);
	bar_write(f, VIRTIO_PCI_MSIX_TABLE + 8, 0x41, 4);
	bar_write(f, VIRTIO_PCI_MSIX_TABLE + 12, 0, 4);
	cfg_write(f, f->msix + 2u, PCI_MSIX_FLAGS_ENABLE, 2);
	/* msix_config: vector 0; a vector beyond the table reads back as NO_VECTOR. */
	bar_write(f, 0x10, 5, 2);
	assert_int_equal(bar_read(f, 0x10, 2), VIRTIO_PCI_NO_VECTOR);
	bar_write(f, 0x10, 0, 2);
	assert_int_equal(bar_read(f, 0x10, 2), 0);
	assert_int_equal(f->fake.sets, 1);
	assert_int_equal(f->fake.addr, 0xfee00000);
	assert_int_equal(f->fake.data, 0x41);
	assert_int_equal(f->fake.rid, 1 << 3); /* 00:01.0 */
}

static void test_msix_delivery_and_masking(void **state)
{
	struct fx *f = *state;

	bring_up(f);
	f->dev.signal_config(&f->dev);
	assert_true(fired(f, 0));
	/* ISR: the config bit, cleared by the read. */
	assert_int_equal(bar_read(f, VIRTIO_PCI_ISR, 1), VIRTIO_ISR_CONFIG);
	assert_int_equal(bar_read(f, VIRTIO_PCI_ISR, 1), 0);

	/* Entry masked: pending, sent when unmasked. */
	bar_write(f, VIRTIO_PCI_MSIX_TABLE + 12, PCI_MSIX_ENTRY_MASKED, 4);
	f->dev.signal_config(&f->dev);
	assert_false(fired(f, 0));
	assert_int_equal(bar_read(f, VIRTIO_PCI_MSIX_PBA, 4), 1);
	bar_write(f, VIRTIO_PCI_MSIX_TABLE + 12, 0, 4);
	assert_true(fired(f, 0));
	assert_int_equal(bar_read(f, VIRTIO_PCI_MSIX_PBA, 4), 0);

	/* Function masked: the same. */
	cfg_write(f, f->msix + 2u, PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL, 2);
	f->dev.signal_config(&f->dev);
	assert_false(fired(f, 0));
	assert_int_equal(bar_read(f, VIRTIO_PCI_MSIX_PBA, 4), 1);
	cfg_write(f, f->msix + 2u, PCI_MSIX_FLAGS_ENABLE, 2);
	assert_true(fired(f, 0));

	/* Bus mastering off: nothing goes out until it is back on. */
	cfg_write(f, PCI_COMMAND, PCI_COMMAND_MEMORY, 2);
	f->dev.signal_config(&f->dev);
	assert_false(fired(f, 0));
	cfg_write(f, PCI_COMMAND, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER, 2);
	assert_true(fired(f, 0));
}

static void test_msix_bad_address_refused(void **state)
{
	struct fx *f = *state;

	bring_up(f);
	/* A live entry moved to an address no interrupt controller takes. */
	bar_write(f, VIRTIO_PCI_MSIX_TABLE + 0, 0x00001000, 4);
	assert_true(f->fake.refused >= 1);
	f->dev.signal_config(&f->dev);
	assert_false(fired(f, 0));
	assert_int_equal(bar_read(f, VIRTIO_PCI_MSIX_PBA, 4), 1);
	/* Fixed: the pending interrupt goes out to the new message. */
	bar_write(f, VIRTIO_PCI_MSIX_TABLE + 0, 0xfee01000, 4);
	assert_true(fired(f, 0));
	assert_int_equal(f->fake.addr, 0xfee01000);
	/* Table accesses of odd widths are ignored. */
	bar_write(f, VIRTIO_PCI_MSIX_TABLE + 1, 0xff, 1);
	assert_int_equal(bar_read(f, VIRTIO_PCI_MSIX_TABLE + 0, 4), 0xfee01000);
}

/* The PCI configuration access capability: BAR 0 through config space alone. */
static void test_pci_cfg_window(void **state)
{
	struct fx *f = *state;
	uint8_t pos, cap = 0;

	bring_up(f);
	for (pos = (uint8_t)cfg_read(f, PCI_CAP_PTR, 1); pos;
	     pos = (uint8_t)cfg_read(f, pos + 1u, 1))
		if (cfg_read(f, pos, 1) == PCI_CAP_ID_VNDR && cfg_read(f, pos + 3u, 1) == 5)
			cap = pos;
	assert_int_not_equal(cap, 0);
	assert_int_equal(cfg_read(f, cap + 2u, 1), 20); /* cap_len */
	/* num_queues (common config 0x12, 2 bytes) */
	cfg_write(f, cap + 4u, 0, 1);
	cfg_write(f, cap + 8u, 0x12, 4);
	cfg_write(f, cap + 12u, 2, 4);
	assert_int_equal(cfg_read(f, cap + 16u, 4) & 0xffff, 1);
	/* msix_config written through it reads back through the BAR. */
	cfg_write(f, cap + 8u, 0x10, 4);
	cfg_write(f, cap + 16u, VIRTIO_PCI_NO_VECTOR, 4);
	assert_int_equal(bar_read(f, 0x10, 2), VIRTIO_PCI_NO_VECTOR);
	/* A window beyond the BAR, or unaligned, reaches nothing. */
	cfg_write(f, cap + 8u, VIRTIO_PCI_BAR_SIZE, 4);
	cfg_write(f, cap + 16u, 0, 4);
	cfg_write(f, cap + 8u, 0x11, 4);
	cfg_write(f, cap + 16u, 0, 4);
	assert_int_equal(bar_read(f, 0x10, 2), VIRTIO_PCI_NO_VECTOR);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_msix_delivery_and_masking, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_msix_bad_address_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pci_cfg_window, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
