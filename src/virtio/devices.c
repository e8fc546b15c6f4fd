#include "virtio/devices.h"
#include "arch/arch.h"
#include "virtio/blk.h"
#include "virtio/console.h"
#include "virtio/mmio.h"
#include "virtio/net.h"
#include "virtio/pci.h"
#include "vmm/irq_routing.h"
#include "virtio/rng.h"
#include "virtio/virtio.h"
#include "base/log.h"
#include "vmm/vm.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static size_t console_receive(void *ctx, const uint8_t *buf, size_t len)
{
	return virtio_console_receive(ctx, buf, len);
}

/* Puts `dev` on PCI bus 0 (--enable-pci). */
static int attach_pci(struct vm *vm, struct virtio_device *dev, const char *id, const char *what)
{
	struct vm_virtio_slot *slot = &vm->virtio[vm->nr_virtio];
	struct virtio_pci_params p = {
	    .host = vm->pci,
	    .vm_fd = vm->fd,
	    .mem = &vm->mem,
	    .msi = irq_routing_msi(vm->irq_routing),
	};

	if (vm->nr_virtio == VM_MAX_VIRTIO) {
		log_error("%s: no room for more than %d virtio devices", dev->name, VM_MAX_VIRTIO);
		dev->ops->destroy(dev);
		return -ENOSPC;
	}
	slot->pci = virtio_pci_create(&p, dev);
	if (!slot->pci) {
		dev->ops->destroy(dev);
		return -EIO;
	}
	slot->id = id;
	slot->devfn = virtio_pci_function(slot->pci)->devfn;
	slot->dev = dev;
	vm->nr_virtio++;
	log_info("%s at PCI 00:%02x.0 (virtio-pci, MSI-X)%s%s", dev->name, slot->devfn >> 3,
		 what ? ": " : "", what ? what : "");
	return 0;
}

/* Places `dev` in the next virtio-mmio slot, or on PCI with --enable-pci. Takes ownership of
 * dev: on failure it is destroyed here. */
static int attach(struct vm *vm, struct virtio_device *dev, const char *id, const char *what)
{
	struct vm_virtio_slot *slot = &vm->virtio[vm->nr_virtio];
	struct virtio_mmio_params p = {.bus = &vm->mmio, .vm_fd = vm->fd, .mem = &vm->mem};

	if (vm->pci)
		return attach_pci(vm, dev, id, what);
	if (vm->nr_virtio == VM_MAX_VIRTIO ||
	    arch_virtio_mmio_slot(vm->nr_virtio, &p.base, &p.gsi) != 0) {
		log_error("%s: no free virtio-mmio slot (this platform has %d)", dev->name,
			  vm->nr_virtio);
		dev->ops->destroy(dev);
		return -ENOSPC;
	}
	slot->transport = virtio_mmio_create(&p, dev);
	if (!slot->transport) {
		dev->ops->destroy(dev);
		return -EIO;
	}
	slot->id = id;
	slot->base = p.base;
	slot->gsi = p.gsi;
	slot->dev = dev;
	vm->nr_virtio++;
	log_info("%s at 0x%llx (GSI %u)%s%s", dev->name, (unsigned long long)p.base, p.gsi,
		 what ? ": " : "", what ? what : "");
	return 0;
}

int virtio_devices_create(struct vm *vm)
{
	const struct vm_config *cfg = vm->cfg;
	struct virtio_device *dev;
	char what[4200];
	int ret;

	if (cfg->console == CONSOLE_VIRTIO) {
		if ((ret = virtio_console_create(vm->console_out_fd, &dev)) ||
		    (ret = attach(vm, dev, NULL, "the guest console (hvc0)")))
			return ret;
		vm->console = (struct console_input){.receive = console_receive, .ctx = dev};
	}
	for (int i = 0; i < cfg->nr_disks; i++) {
		const struct disk_config *d = &cfg->disks[i];

		snprintf(what, sizeof(what), "%s (%s)", d->path, d->read_only ? "read-only" : "rw");
		if ((ret = virtio_blk_create(d, &dev)) || (ret = attach(vm, dev, d->id, what)))
			return ret;
	}
	for (int i = 0; i < cfg->nr_nets; i++) {
		snprintf(what, sizeof(what), "tap %s", cfg->nets[i].tap);
		if ((ret = virtio_net_create(&cfg->nets[i], &dev)) ||
		    (ret = attach(vm, dev, cfg->nets[i].id, what)))
			return ret;
	}
	if (cfg->rng) {
		if ((ret = virtio_rng_create(&dev)) ||
		    (ret = attach(vm, dev, NULL, "host getrandom()")))
			return ret;
	}
	return 0;
}

int virtio_devices_connect_irqs(struct vm *vm)
{
	for (int i = 0; i < vm->nr_virtio; i++) {
		int ret;

		if (!vm->virtio[i].transport)
			continue; /* PCI: MSI routes are made as the guest programs its vectors */
		ret = virtio_mmio_connect_irq(vm->virtio[i].transport);
		if (ret)
			return ret;
	}
	return 0;
}

/* Disks are attached in --disk order (virtio_devices_create): the k-th virtio-blk device is
 * cfg->disks[k]. */
struct virtio_device *virtio_devices_find_disk(struct vm *vm, const char *id)
{
	int k = 0;

	if (!id || !id[0])
		return NULL;
	for (int i = 0; i < vm->nr_virtio; i++) {
		struct virtio_device *dev = vm->virtio[i].dev;

		if (dev->ops->device_id != VIRTIO_ID_BLOCK)
			continue;
		if (k < vm->cfg->nr_disks && strcmp(vm->cfg->disks[k].id, id) == 0)
			return dev;
		k++;
	}
	return NULL;
}

void virtio_devices_destroy(struct vm *vm)
{
	for (int i = vm->nr_virtio - 1; i >= 0; i--) {
		if (vm->console.ctx == vm->virtio[i].dev)
			vm->console = (struct console_input){0};
		if (vm->virtio[i].pci)
			virtio_pci_destroy(vm->virtio[i].pci);
		else
			virtio_mmio_destroy(vm->virtio[i].transport);
		memset(&vm->virtio[i], 0, sizeof(vm->virtio[i]));
	}
	vm->nr_virtio = 0;
}
