#include "virtio/devices.h"
#include "arch/arch.h"
#include "config/resource.h"
#include "virtio/blk.h"
#include "virtio/console.h"
#include "virtio/mmio.h"
#include "virtio/net.h"
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

/* Places `dev` in the next virtio-mmio slot. Takes ownership of dev: on failure it is
 * destroyed here. */
static int attach(struct vm *vm, struct virtio_device *dev, const char *id, const char *what)
{
	struct vm_virtio_slot *slot = &vm->virtio[vm->nr_virtio];
	struct virtio_mmio_params p = {.bus = &vm->mmio, .vm_fd = vm->fd, .mem = &vm->mem};

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

/* --- one creation function per device kind: the i-th device of its kind in vm->cfg --- */

static int create_console(struct vm *vm, int i)
{
	struct virtio_device *dev;
	int ret;

	if ((ret = virtio_console_create(vm->console_out_fd, &dev)) ||
	    (ret = attach(vm, dev, NULL, "the guest console (hvc0)")))
		return ret;
	vm->console = (struct console_input){.receive = console_receive, .ctx = dev};
	return 0;
}

static int create_disk(struct vm *vm, int i)
{
	const struct disk_config *d = &vm->cfg->disks[i];
	struct virtio_device *dev;
	char what[4200];
	int ret;

	snprintf(what, sizeof(what), "%s (%s)", d->path, d->read_only ? "read-only" : "rw");
	if ((ret = virtio_blk_create(d, &dev)))
		return ret;
	return attach(vm, dev, d->id, what);
}

static int create_net(struct vm *vm, int i)
{
	const struct net_config *nc = &vm->cfg->nets[i];
	struct virtio_device *dev;
	char what[64];
	int ret;

	snprintf(what, sizeof(what), "tap %s", nc->tap);
	if ((ret = virtio_net_create(nc, &dev)))
		return ret;
	return attach(vm, dev, nc->id, what);
}

static int create_rng(struct vm *vm, int i)
{
	struct virtio_device *dev;
	int ret;

	if ((ret = virtio_rng_create(&dev)))
		return ret;
	return attach(vm, dev, NULL, "host getrandom()");
}

/* The creation table: a device kind's config resource (config/resource.h: how many devices the
 * config asks for) and how one of them is made. Its order is the order the guest finds them in. */
static const struct {
	const struct config_resource *kind;
	int (*create)(struct vm *vm, int i);
} kinds[] = {
	{ &console_resource, create_console },
	{ &drive_resource, create_disk },
	{ &net_resource, create_net },
	{ &entropy_resource, create_rng },
};

/* A device kind the config offers but this table cannot create would be dropped without a word:
 * refuse the VM instead. */
static int check_kinds(const struct vm_config *cfg)
{
	for (const struct config_resource *const *r = config_resources; *r; r++) {
		size_t k = 0;

		if (!(*r)->count || !(*r)->count(cfg))
			continue;
		while (k < sizeof(kinds) / sizeof(kinds[0]) && kinds[k].kind != *r)
			k++;
		if (k == sizeof(kinds) / sizeof(kinds[0])) {
			log_error("%s%s: this build has no way to create such a device",
				  (*r)->option ? "--" : "", (*r)->option ? (*r)->option : (*r)->name);
			return -ENOSYS;
		}
	}
	return 0;
}

int virtio_devices_create(struct vm *vm)
{
	int ret = check_kinds(vm->cfg);

	if (ret)
		return ret;
	for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
		int n = kinds[k].kind->count(vm->cfg);

		for (int i = 0; i < n; i++)
			if ((ret = kinds[k].create(vm, i)))
				return ret;
	}
	return 0;
}

int virtio_devices_connect_irqs(struct vm *vm)
{
	for (int i = 0; i < vm->nr_virtio; i++) {
		int ret = virtio_mmio_connect_irq(vm->virtio[i].transport);

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
		virtio_mmio_destroy(vm->virtio[i].transport);
		memset(&vm->virtio[i], 0, sizeof(vm->virtio[i]));
	}
	vm->nr_virtio = 0;
}
