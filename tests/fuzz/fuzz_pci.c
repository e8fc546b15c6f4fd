/* PCI config space and the virtio-pci transport (src/pci/host.c, device.c, src/virtio/pci.c and
 * the virtio core behind it) as a guest reaches them: ECAM reads and writes on the MMIO bus,
 * configuration mechanism #1 at ports 0xcf8..0xcff, and BAR 0 (common config, ISR, notify,
 * device config, MSI-X table and PBA) wherever the guest has put it, with a virtio-rng device
 * on 00:01.0 whose queue the guest can set up in 64 KiB of RAM and kick. Any width (0..8 and
 * beyond), any alignment, any offset. Each input gets a fresh bus, host and device.
 *
 * Input: a list of 16-byte accesses: u8 kind (0 ECAM, 1 port I/O, 2 BAR 0, 3 raw MMIO address),
 * u8 write, u8 len, u8 pad, u32 offset, u64 value. */
#include "fuzz/input.h"
#include "base/log.h"
#include "pci/host.h"
#include "virtio/pci.h"
#include "virtio/rng.h"

#include <errno.h>
#include <stdlib.h>

#define ECAM 0xe0000000ULL
#define WIN  0xc0000000ULL

static int msi_add(void *ctx, int fd)
{
	return 1;
}

static int msi_set(void *ctx, int id, uint64_t addr, uint32_t data, uint32_t rid)
{
	return (addr >> 20) == 0xfee ? 0 : -EINVAL;
}

static void msi_remove(void *ctx, int id)
{
}

static int msi_detach(void *ctx, int id, bool detach)
{
	return 0;
}

static const struct msi_routes_ops msi_ops = {msi_add, msi_set, msi_remove, msi_detach};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct guest_mem mem;
	struct fuzz_input in = {data, size};
	struct pci_host_params hp = {
	    .ecam_base = ECAM, .ecam_size = 0x100000, .mmio_base = WIN, .mmio_size = 0x1000000};
	struct msi_routes msi = {.ops = &msi_ops};
	struct bus mmio, pio;
	struct pci_host host;
	struct virtio_device *dev;
	struct virtio_pci *t;

	if (!mem.nr_regions) {
		struct guest_region r = {.gpa = 0, .size = 0x10000};

		log_set_level(LOG_ERROR);
		if (log_set_path("/dev/null"))
			abort();
		fuzz_ram_map(&mem, &r, 1);
	}
	bus_init(&mmio, "mmio");
	bus_init(&pio, "pio");
	hp.mmio = &mmio;
	hp.pio = &pio;
	if (pci_host_init(&host, &hp) || virtio_rng_create(NULL, &dev))
		abort();
	t = virtio_pci_create(
	    &(struct virtio_pci_params){.host = &host, .vm_fd = -1, .mem = &mem, .msi = &msi}, dev);
	if (!t)
		abort();

	for (int i = 0; i < 256 && in.len; i++) {
		uint8_t kind = fuzz_u8(&in) & 3, write = fuzz_u8(&in) & 1, len = fuzz_u8(&in);
		uint32_t off;
		uint64_t value, addr;

		fuzz_u8(&in);
		off = fuzz_u32(&in);
		value = fuzz_u64(&in);
		/* The bus hands devices 1, 2, 4 or 8 bytes (what a vCPU exit can carry). */
		len = (uint8_t)(1u << (len & 3));
		switch (kind) {
		case 0:
			addr = ECAM + off % hp.ecam_size;
			break;
		case 1:
			bus_access(&pio, 0xcf8 + off % 8, &value, len > 4 ? 4 : len, write);
			continue;
		case 2:
			addr = pci_device_bar_addr(virtio_pci_function(t), 0) +
			       off % VIRTIO_PCI_BAR_SIZE;
			break;
		default:
			addr = WIN + off;
			break;
		}
		bus_access(&mmio, addr, &value, len, write);
	}

	virtio_pci_destroy(t);
	pci_host_destroy(&host);
	bus_destroy(&pio);
	bus_destroy(&mmio);
	return 0;
}
