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

#include "base/device.h"
#include "base/state.h"
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
	int sets, refused, routes;
	uint64_t addr;
	uint32_t data, rid;
	bool detached[8]; /* per route id */
};

static int msi_add(void *ctx, int fd)
{
	struct fake_msi *m = ctx;

	return m->routes < 8 ? m->routes++ : -ENOSPC;
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

static int msi_detach(void *ctx, int id, bool detach)
{
	struct fake_msi *m = ctx;

	m->detached[id] = detach;
	return 0;
}

static const struct msi_routes_ops fake_ops = {msi_add, msi_set, msi_remove, msi_detach};

static int direct_irq_changes;

static void nop_notify(struct virtio_device *dev, uint16_t q)
{
}
static void count_direct_irq_changed(struct virtio_device *dev)
{
	direct_irq_changes++;
}
static void nop_destroy(struct virtio_device *dev)
{
}

static const struct virtio_device_ops dev_ops = {
    .device_id = VIRTIO_ID_RNG,
    .nr_queues = 1,
    .queue_max_size = 64,
    .direct_irq_changed = count_direct_irq_changed,
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

static void signal_fd(int fd)
{
	uint64_t one = 1;

	assert_int_equal(write(fd, &one, sizeof(one)), sizeof(one));
}

/* A vhost-user backend signalling queue 0's vector eventfd itself (direct_irq_fd): the eventfd
 * is attached to its route (KVM delivers at once) exactly while the vector is live, so that what
 * the backend signals while the entry or the function is masked, or bus mastering is off, waits
 * in the eventfd (the PBA bit) and goes out when the vector is live again (the fake's
 * "delivery" is the eventfd still holding the signal when it is attached again; KVM's assign
 * injects it). MSI-X off: no direct eventfd, and the device hears of the change. */
static void test_direct_irq_masking(void **state)
{
	struct fx *f = *state;
	int fd, route, changes;

	bring_up(f);
	bar_write(f, 0x14, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER, 1);
	bar_write(f, 0x16, 0, 2);
	assert_int_equal(f->dev.direct_irq_fd(&f->dev, 0), -1); /* no vector yet */
	changes = direct_irq_changes;
	bar_write(f, 0x1a, 1, 2); /* queue 0 -> vector 1 */
	assert_int_equal(direct_irq_changes, changes + 1);
	fd = f->dev.direct_irq_fd(&f->dev, 0);
	assert_int_equal(fd, virtio_pci_vector_eventfd(f->t, 1));
	assert_int_equal(f->dev.direct_irq_fd(&f->dev, 1), -1); /* no such queue */

	/* Vector 1 still masked (as reset): the backend's signal is pending. */
	signal_fd(fd);
	assert_int_equal(bar_read(f, VIRTIO_PCI_MSIX_PBA, 4), 2);
	bar_write(f, VIRTIO_PCI_MSIX_TABLE + 16, 0xfee00000, 4);
	bar_write(f, VIRTIO_PCI_MSIX_TABLE + 24, 0x42, 4);
	bar_write(f, VIRTIO_PCI_MSIX_TABLE + 28, 0, 4); /* unmasked: routed and attached */
	route = f->fake.routes - 1;
	assert_false(f->fake.detached[route]);
	assert_true(fired(f, 1));
	assert_int_equal(bar_read(f, VIRTIO_PCI_MSIX_PBA, 4), 0);

	/* Entry masked: detached; the signal waits, and is there when attached again. */
	bar_write(f, VIRTIO_PCI_MSIX_TABLE + 28, PCI_MSIX_ENTRY_MASKED, 4);
	assert_true(f->fake.detached[route]);
	signal_fd(fd);
	assert_int_equal(bar_read(f, VIRTIO_PCI_MSIX_PBA, 4), 2);
	bar_write(f, VIRTIO_PCI_MSIX_TABLE + 28, 0, 4);
	assert_false(f->fake.detached[route]);
	assert_true(fired(f, 1));

	/* Function masked, then bus mastering off: the same. */
	cfg_write(f, f->msix + 2u, PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL, 2);
	assert_true(f->fake.detached[route]);
	signal_fd(fd);
	assert_int_equal(bar_read(f, VIRTIO_PCI_MSIX_PBA, 4), 2);
	cfg_write(f, f->msix + 2u, PCI_MSIX_FLAGS_ENABLE, 2);
	assert_false(f->fake.detached[route]);
	assert_true(fired(f, 1));
	cfg_write(f, PCI_COMMAND, PCI_COMMAND_MEMORY, 2);
	assert_true(f->fake.detached[route]);
	cfg_write(f, PCI_COMMAND, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER, 2);
	assert_false(f->fake.detached[route]);

	/* MSI-X off: the device is told, and signals through the core again (ISR set). */
	changes = direct_irq_changes;
	cfg_write(f, f->msix + 2u, 0, 2);
	assert_int_equal(direct_irq_changes, changes + 1);
	assert_int_equal(f->dev.direct_irq_fd(&f->dev, 0), -1);
	assert_true(f->fake.detached[route]);
	/* A masking write that leaves MSI-X as it was tells the device nothing. */
	cfg_write(f, f->msix + 2u, PCI_MSIX_FLAGS_MASKALL, 2);
	assert_int_equal(direct_irq_changes, changes + 1);
	cfg_write(f, f->msix + 2u, PCI_MSIX_FLAGS_ENABLE, 2);
	assert_int_equal(direct_irq_changes, changes + 2);
	assert_int_equal(f->dev.direct_irq_fd(&f->dev, 0), fd);
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

/* Save, then restore into a second, fresh function: the same config space (BAR 0 moved by the
 * guest, decoded where it was), vectors, MSI-X table and pending bits; another function's
 * config space is refused and changes nothing. */
static void test_save_restore_round_trip(void **state)
{
	struct fx *a = *state, *b;
	void *bs = NULL;
	struct state_writer w;
	struct state_reader r;
	uint64_t moved = WIN + 0x100000;

	bring_up(a);
	bar_write(a, 0x14, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER, 1);
	bar_write(a, 0x16, 0, 2);
	bar_write(a, 0x1a, 1, 2); /* queue 0 -> vector 1 */
	assert_int_equal(bar_read(a, 0x1a, 2), 1);
	bar_write(a, VIRTIO_PCI_MSIX_TABLE + 16, 0xfee02000, 4);
	bar_write(a, VIRTIO_PCI_MSIX_TABLE + 24, 0x55, 4);
	bar_write(a, VIRTIO_PCI_MSIX_TABLE + 12, PCI_MSIX_ENTRY_MASKED, 4);
	a->dev.signal_config(&a->dev);
	assert_false(fired(a, 0));
	cfg_write(a, PCI_BAR0, (uint32_t)moved, 4);
	a->bar = moved;
	assert_int_equal(bar_read(a, VIRTIO_PCI_MSIX_PBA, 4), 1);

	state_writer_init(&w);
	assert_int_equal(virtio_pci_save(a->t, VM_DEVICE_VIRTIO_PCI, &w), 0);
	assert_int_equal(setup(&bs), 0);
	b = bs;

	/* Another function's bytes (the vendor id changed): refused, b untouched. */
	w.buf[STATE_SECTION_HEADER_SIZE + 4] ^= 1;
	state_reader_init(&r, w.buf, w.len);
	assert_int_equal(virtio_pci_restore(b->t, VM_DEVICE_VIRTIO_PCI, &r), -EBADMSG);
	assert_int_equal(cfg_read(b, PCI_COMMAND, 2), 0);
	w.buf[STATE_SECTION_HEADER_SIZE + 4] ^= 1;

	state_reader_init(&r, w.buf, w.len);
	assert_int_equal(virtio_pci_restore(b->t, VM_DEVICE_VIRTIO_PCI, &r), 0);
	assert_true(state_reader_at_end(&r));
	for (uint32_t reg = 0; reg < PCI_CONFIG_SIZE; reg += 4)
		assert_int_equal(cfg_read(b, reg, 4), cfg_read(a, reg, 4));
	b->bar = moved;
	b->msix = a->msix;
	assert_int_equal(bar_read(b, 0x10, 2), 0); /* config vector */
	bar_write(b, 0x16, 0, 2);
	assert_int_equal(bar_read(b, 0x1a, 2), 1);
	assert_int_equal(bar_read(b, VIRTIO_PCI_MSIX_TABLE + 16, 4), 0xfee02000);
	assert_int_equal(bar_read(b, VIRTIO_PCI_MSIX_TABLE + 24, 4), 0x55);
	assert_int_equal(bar_read(b, VIRTIO_PCI_MSIX_PBA, 4), 1);
	/* The pending config interrupt goes out when b's vector 0 is unmasked, to a's message. */
	bar_write(b, VIRTIO_PCI_MSIX_TABLE + 12, 0, 4);
	assert_true(fired(b, 0));
	assert_int_equal(b->fake.addr, 0xfee00000);
	assert_int_equal(b->fake.data, 0x41);

	state_writer_free(&w);
	teardown(&bs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_msix_delivery_and_masking, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_msix_bad_address_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pci_cfg_window, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_direct_irq_masking, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_save_restore_round_trip, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
