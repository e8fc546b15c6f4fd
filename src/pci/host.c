#include "pci/host.h"

#include "base/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Vendor 0x1b36 device 0x0008: the id virtual machines use for a generic PCIe host bridge. */
#define BRIDGE_VENDOR 0x1b36
#define BRIDGE_DEVICE 0x0008

#define ECAM_BUS_SHIFT 20

/* Kinds of guest mistakes, each logged once per host. */
enum {
	LOGGED_WIDTH = 1 << 0,
	LOGGED_ALIGN = 1 << 1,
	LOGGED_BAR_WINDOW = 1 << 2,
	LOGGED_BAR_CLASH = 1 << 3,
	LOGGED_CF8 = 1 << 4,
	LOGGED_EXTENDED = 1 << 5,
};

#define log_once(h, kind, fmt, ...)                                                                \
	do {                                                                                       \
		if (!(atomic_fetch_or(&(h)->logged, (kind)) & (kind)))                             \
			log_warn("pci: " fmt, ##__VA_ARGS__);                                      \
	} while (0)

static struct pci_device *function_at(struct pci_host *h, uint8_t bus, uint8_t devfn)
{
	/* One function per slot; other buses have nothing. */
	if (bus != 0 || (devfn & 7))
		return NULL;
	return h->slots[devfn >> 3];
}

/* ---- BAR decoding (lock held) ---- */

static bool in_window(struct pci_host *h, uint64_t addr, uint64_t size)
{
	return addr >= h->mmio_base && size <= h->mmio_size &&
	       addr - h->mmio_base <= h->mmio_size - size;
}

static void unmap_bar(struct pci_host *h, struct pci_device *d, int i)
{
	struct pci_bar *b = &d->bars[i];

	if (!b->mapped)
		return;
	bus_unregister(h->mmio, b->mapped_at); /* returns once no vCPU is inside */
	b->mapped = false;
	if (d->ops && d->ops->bar_mapped)
		d->ops->bar_mapped(d, i, false, b->mapped_at);
}

/* Decodes each BAR where COMMAND and the BAR register say, and nowhere else. */
static void update_bars(struct pci_host *h, struct pci_device *d)
{
	bool memory = atomic_load(&d->command) & PCI_COMMAND_MEMORY;

	for (int i = 0; i < PCI_NR_BARS; i++) {
		struct pci_bar *b = &d->bars[i];
		uint64_t addr = pci_device_bar_addr(d, i);
		bool want = memory && b->size && in_window(h, addr, b->size);
		int err;

		if (b->mapped && (!want || b->mapped_at != addr))
			unmap_bar(h, d, i);
		if (memory && b->size && !want)
			log_once(h, LOGGED_BAR_WINDOW,
				 "%s: BAR %d at %#llx (%#x bytes) is outside the window [%#llx, "
				 "+%#llx); not decoded",
				 d->name, i, (unsigned long long)addr, b->size,
				 (unsigned long long)h->mmio_base,
				 (unsigned long long)h->mmio_size);
		if (!want || b->mapped)
			continue;
		err = bus_register(h->mmio, addr, b->size, b->ops, b->opaque, d->name);
		if (err) {
			log_once(h, LOGGED_BAR_CLASH, "%s: BAR %d at %#llx: %s; not decoded",
				 d->name, i, (unsigned long long)addr,
				 err == -EEXIST ? "overlaps another device" : strerror(-err));
			continue;
		}
		b->mapped = true;
		b->mapped_at = addr;
		if (d->ops && d->ops->bar_mapped)
			d->ops->bar_mapped(d, i, true, addr);
	}
}

/* ---- Config access ---- */

static bool valid_access(struct pci_host *h, uint32_t off, uint32_t len, bool is_write)
{
	if (len != 1 && len != 2 && len != 4) {
		log_once(h, LOGGED_WIDTH,
			 "%u-byte config %s at %#x: config space takes 1, 2 or 4; %s", len,
			 is_write ? "write" : "read", off, is_write ? "ignored" : "all ones");
		return false;
	}
	if (off & (len - 1)) {
		log_once(h, LOGGED_ALIGN, "unaligned %u-byte config %s at %#x; %s", len,
			 is_write ? "write" : "read", off, is_write ? "ignored" : "all ones");
		return false;
	}
	return true;
}

void pci_host_config_read(struct pci_host *h, uint8_t bus, uint8_t devfn, uint32_t off, void *data,
			  uint32_t len)
{
	struct pci_device *d;
	uint32_t v;

	memset(data, 0xff, len);
	if (!valid_access(h, off, len, false))
		return;
	pthread_mutex_lock(&h->lock);
	d = function_at(h, bus, devfn);
	if (d) {
		if (off < PCI_CONFIG_SIZE && d->ops && d->ops->config_read)
			d->ops->config_read(d, off, len);
		/* Extended config space (ECAM only) is empty: no extended capabilities. */
		v = off < PCI_CONFIG_SIZE ? pci_device_config_read(d, off, len) : 0;
		memcpy(data, &v, len);
	}
	pthread_mutex_unlock(&h->lock);
}

void pci_host_config_write(struct pci_host *h, uint8_t bus, uint8_t devfn, uint32_t off,
			   const void *data, uint32_t len)
{
	struct pci_device *d;
	uint32_t v = 0;

	if (!valid_access(h, off, len, true))
		return;
	memcpy(&v, data, len);
	pthread_mutex_lock(&h->lock);
	d = function_at(h, bus, devfn);
	if (d && off >= PCI_CONFIG_SIZE) {
		log_once(h, LOGGED_EXTENDED, "%s: write to extended config space at %#x; ignored",
			 d->name, off);
	} else if (d) {
		pci_device_config_write(d, off, len, v);
		if (off < PCI_COMMAND + 2 && off + len > PCI_COMMAND)
			update_bars(h, d);
		else if (off < PCI_BAR0 + 4 * PCI_NR_BARS && off + len > PCI_BAR0)
			update_bars(h, d);
		if (d->ops && d->ops->config_written)
			d->ops->config_written(d, off, len);
	}
	pthread_mutex_unlock(&h->lock);
}

/* ECAM: the offset into the window names bus, device, function and register. */
static void ecam_read(void *opaque, uint64_t offset, void *data, uint32_t len)
{
	pci_host_config_read(opaque, (uint8_t)(offset >> ECAM_BUS_SHIFT), (uint8_t)(offset >> 12),
			     offset & 0xfff, data, len);
}

static void ecam_write(void *opaque, uint64_t offset, const void *data, uint32_t len)
{
	pci_host_config_write(opaque, (uint8_t)(offset >> ECAM_BUS_SHIFT), (uint8_t)(offset >> 12),
			      offset & 0xfff, data, len);
}

const struct bus_device_ops pci_host_ecam_ops = {.read = ecam_read, .write = ecam_write};

/* Mechanism #1: a dword address register at 0xcf8 (enable bit, bus, devfn, register) and the
 * data at 0xcfc + (register & 3). Only dword accesses reach the address register (Linux probes
 * with a byte write to 0xcfb, which must change nothing). */
static void cf8_read(void *opaque, uint64_t offset, void *data, uint32_t len)
{
	struct pci_host *h = opaque;
	uint32_t cf8;

	memset(data, 0xff, len);
	if (offset < 4) {
		if (offset == 0 && len == 4) {
			pthread_mutex_lock(&h->lock);
			memcpy(data, &h->cf8, 4);
			pthread_mutex_unlock(&h->lock);
		}
		return;
	}
	pthread_mutex_lock(&h->lock);
	cf8 = h->cf8;
	pthread_mutex_unlock(&h->lock);
	if (!(cf8 & PCI_CF8_ENABLE))
		return;
	pci_host_config_read(h, (uint8_t)(cf8 >> 16), (uint8_t)(cf8 >> 8),
			     (cf8 & 0xfc) + (uint32_t)(offset - 4), data, len);
}

static void cf8_write(void *opaque, uint64_t offset, const void *data, uint32_t len)
{
	struct pci_host *h = opaque;
	uint32_t cf8;

	if (offset < 4) {
		if (offset == 0 && len == 4) {
			memcpy(&cf8, data, 4);
			pthread_mutex_lock(&h->lock);
			/* Reserved bits 30:24 and 1:0 read as 0. */
			h->cf8 = cf8 & 0x80fffffcu;
			pthread_mutex_unlock(&h->lock);
		} else {
			log_debug("pci: %u-byte write at port %#llx ignored", len,
				  0xcf8ULL + offset);
		}
		return;
	}
	pthread_mutex_lock(&h->lock);
	cf8 = h->cf8;
	pthread_mutex_unlock(&h->lock);
	if (!(cf8 & PCI_CF8_ENABLE)) {
		log_once(h, LOGGED_CF8,
			 "config write through 0xcfc without the enable bit in "
			 "0xcf8; ignored");
		return;
	}
	pci_host_config_write(h, (uint8_t)(cf8 >> 16), (uint8_t)(cf8 >> 8),
			      (cf8 & 0xfc) + (uint32_t)(offset - 4), data, len);
}

const struct bus_device_ops pci_host_cf8_ops = {.read = cf8_read, .write = cf8_write};

/* ---- Setup ---- */

int pci_host_init(struct pci_host *h, const struct pci_host_params *p)
{
	int err;

	memset(h, 0, sizeof(*h));
	h->mmio = p->mmio;
	h->pio = p->pio;
	h->ecam_base = p->ecam_base;
	h->ecam_size = p->ecam_size;
	h->mmio_base = h->next_bar = p->mmio_base;
	h->mmio_size = p->mmio_size;
	pthread_mutex_init(&h->lock, NULL);
	pci_device_init(&h->bridge, "pci host bridge", BRIDGE_VENDOR, BRIDGE_DEVICE, 0,
			PCI_CLASS_BRIDGE_HOST, 0, 0);
	h->bridge.host = h;
	h->slots[0] = &h->bridge;

	err = bus_register(h->mmio, h->ecam_base, h->ecam_size, &pci_host_ecam_ops, h, "pci-ecam");
	if (err) {
		log_error("pci: cannot register the ECAM window %#llx+%#llx: %s",
			  (unsigned long long)h->ecam_base, (unsigned long long)h->ecam_size,
			  strerror(-err));
		goto fail;
	}
	h->ecam_on_bus = true;
	if (h->pio) {
		err = bus_register(h->pio, 0xcf8, 8, &pci_host_cf8_ops, h, "pci-cf8");
		if (err) {
			log_error("pci: cannot register ports 0xcf8-0xcff: %s", strerror(-err));
			goto fail;
		}
		h->cf8_on_bus = true;
	}
	return 0;
fail:
	pci_host_destroy(h);
	return err;
}

void pci_host_destroy(struct pci_host *h)
{
	if (h->ecam_on_bus)
		bus_unregister(h->mmio, h->ecam_base);
	if (h->cf8_on_bus)
		bus_unregister(h->pio, 0xcf8);
	h->ecam_on_bus = h->cf8_on_bus = false;
	pthread_mutex_destroy(&h->lock);
}

int pci_host_add(struct pci_host *h, struct pci_device *d)
{
	uint64_t next;
	int slot;

	pthread_mutex_lock(&h->lock);
	for (slot = 1; slot < PCI_MAX_SLOTS && h->slots[slot]; slot++)
		;
	if (slot == PCI_MAX_SLOTS) {
		pthread_mutex_unlock(&h->lock);
		log_error("%s: no free slot on PCI bus 0", d->name);
		return -ENOSPC;
	}
	next = h->next_bar;
	for (int i = 0; i < PCI_NR_BARS; i++) {
		uint32_t size = d->bars[i].size;

		if (!size)
			continue;
		next = (next + size - 1) & ~((uint64_t)size - 1);
		if (!in_window(h, next, size)) {
			pthread_mutex_unlock(&h->lock);
			log_error("%s: no room for its BAR %d in the PCI window", d->name, i);
			return -ENOSPC;
		}
		pci_config_set(d, PCI_BAR0 + 4u * (uint32_t)i, 4,
			       (uint32_t)next | (pci_config_get(d, PCI_BAR0 + 4u * i, 4) & 0xf));
		next += size;
	}
	h->next_bar = next;
	d->devfn = (uint8_t)(slot << 3);
	d->host = h;
	h->slots[slot] = d;
	pthread_mutex_unlock(&h->lock);
	return 0;
}

void pci_host_remove(struct pci_host *h, struct pci_device *d)
{
	pthread_mutex_lock(&h->lock);
	if (d->host == h && h->slots[d->devfn >> 3] == d) {
		h->slots[d->devfn >> 3] = NULL;
		for (int i = 0; i < PCI_NR_BARS; i++)
			unmap_bar(h, d, i);
	}
	d->host = NULL;
	pthread_mutex_unlock(&h->lock);
}

static void entry_destroy(struct vm_device *entry)
{
	struct pci_host *h = (struct pci_host *)entry;

	pci_host_destroy(h);
	free(h);
}

static const struct vm_device_ops host_entry_ops = {
    .name = "pci-host",
    .destroy = entry_destroy,
};

struct pci_host *pci_host_create(const struct pci_host_params *p)
{
	struct pci_host *h = calloc(1, sizeof(*h));

	if (!h) {
		log_error("pci: out of memory");
		return NULL;
	}
	if (pci_host_init(h, p)) {
		free(h);
		return NULL;
	}
	vm_device_init(&h->entry, VM_DEVICE_PCI_HOST, &host_entry_ops, NULL);
	return h;
}
