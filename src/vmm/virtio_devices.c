#include "vmm/virtio_devices.h"
#include "arch/arch.h"
#include "config/resource.h"
#include "virtio/balloon.h"
#include "virtio/blk.h"
#include "virtio/console.h"
#include "virtio/fs.h"
#include "virtio/core_state.h"
#include "virtio/mmio.h"
#include "virtio/net.h"
#include "virtio/pci.h"
#include "virtio/rng.h"
#include "virtio/virtio.h"
#include "virtio/vsock.h"
#include "base/log.h"
#include "vmm/irq_routing.h"
#include "vmm/vm.h"

#include <errno.h>
#include <jansson.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(VM_CONFIG_MAX_ID < VM_DEVICE_ID_SIZE, "a config id must fit a device's id");

/* A virtio device's entry on the VM's device list: the device and its transport. */
struct virtio_entry {
	struct vm_device entry;
	struct virtio_device *dev;
	/* The transport: one of them, or neither for an entry that only describes a device
	 * (tests). */
	struct virtio_mmio *mmio;
	struct virtio_pci *pci;
	/* virtio-mmio's InterruptACK, batched by KVM once the driver is up (virtio/mmio.h). */
	struct coalesced_zone ack_zone;
};

static struct virtio_entry *entry_of(struct vm_device *entry)
{
	return (struct virtio_entry *)entry;
}

static struct virtio_device *of(struct vm_device *entry)
{
	return entry_of(entry)->dev;
}

static size_t console_receive(void *ctx, const uint8_t *buf, size_t len)
{
	return virtio_console_receive(ctx, buf, len);
}

/* The transport, which destroys the device too. An entry without one leaves the device to its
 * owner. */
static void entry_destroy(struct vm_device *entry)
{
	struct virtio_entry *e = entry_of(entry);

	if (e->mmio)
		virtio_mmio_destroy(e->mmio);
	else if (e->pci)
		virtio_pci_destroy(e->pci);
	free(e);
}

/* A machine reset: as the driver writing 0 to Status. */
static void entry_reset(struct vm_device *entry)
{
	struct virtio_entry *e = entry_of(entry);
	struct virtio_core *c;

	if (!e->mmio && !e->pci)
		return;
	c = virtio_core_of(e->dev);
	virtio_core_lock(c);
	virtio_core_write_status(c, 0);
	virtio_core_unlock(c);
}

/* The core's state (virtio/core_state.h), in a section tagged with the entry's kind. */
static int entry_save(struct vm_device *entry, struct state_writer *w)
{
	struct virtio_entry *e = entry_of(entry);

	int err;

	if (!e->mmio && !e->pci)
		return -ENOTSUP;
	/* virtio-pci: its transport's section first (virtio/pci.h), then the core's. */
	if (e->pci && (err = virtio_pci_save(e->pci, VM_DEVICE_VIRTIO_PCI, w)))
		return err;
	return virtio_core_save(virtio_core_of(e->dev), (uint16_t)entry->kind, w);
}

static int entry_hold(struct vm_device *entry, bool held)
{
	struct virtio_entry *e = entry_of(entry);

	if (!e->mmio && !e->pci)
		return 0; /* no transport, no worker: nothing runs */
	return virtio_core_hold(virtio_core_of(e->dev), held);
}

static int entry_restore(struct vm_device *entry, struct state_reader *r)
{
	struct virtio_entry *e = entry_of(entry);

	int err;

	if (!e->mmio && !e->pci)
		return -ENOTSUP;
	if (e->pci && (err = virtio_pci_restore(e->pci, VM_DEVICE_VIRTIO_PCI, r)))
		return err;
	return virtio_core_restore(virtio_core_of(e->dev), (uint16_t)entry->kind, r);
}

/* From the core's status bits since creation: a device the driver set up and then reset counts as
 * set up (the guest had the driver). */
static bool entry_guest_driver(struct vm_device *entry, struct vm_device_guest_driver *d)
{
	struct virtio_entry *e = entry_of(entry);
	struct virtio_core *c;
	uint32_t seen;

	if (!e->mmio && !e->pci)
		return false;
	c = virtio_core_of(e->dev);
	seen = virtio_core_status_seen(c);
	*d = (struct vm_device_guest_driver){
	    .transport = c->transport_name,
	    .transport_option = c->guest_option,
	    .transport_module = c->guest_module,
	    .found = seen & VIRTIO_STATUS_ACKNOWLEDGE,
	    .taken = seen & VIRTIO_STATUS_DRIVER,
	    .ready = seen & VIRTIO_STATUS_DRIVER_OK,
	    .failed = seen & VIRTIO_STATUS_FAILED,
	    .status = virtio_core_status(c),
	};
	return true;
}

static void set_u64(json_t *obj, const char *key, uint64_t v)
{
	json_object_set_new(obj, key, json_integer((json_int_t)v));
}

static json_t *blk_stats(struct vm_device *entry)
{
	struct virtio_blk_stats s;
	json_t *o = json_object();

	virtio_blk_get_stats(of(entry), &s);
	set_u64(o, "read_requests", s.read_requests);
	set_u64(o, "read_bytes", s.read_bytes);
	set_u64(o, "write_requests", s.write_requests);
	set_u64(o, "write_bytes", s.write_bytes);
	set_u64(o, "flushes", s.flushes);
	set_u64(o, "discards", s.discards);
	set_u64(o, "write_zeroes", s.write_zeroes);
	set_u64(o, "errors", s.errors);
	set_u64(o, "unsupported", s.unsupported);
	return o;
}

static int blk_update(struct vm_device *entry, const struct vm_device_update *up)
{
	int ret;

	if (up->disk_lock)
		return virtio_blk_set_lock(of(entry), up->disk_lock > 0);
	if (up->rate_limiter.which &&
	    (ret = virtio_blk_set_rate_limiter(of(entry), up->rate_limiter.cfg,
					       up->rate_limiter.which)))
		return ret;
	if (!up->backing_path)
		return 0;
	return virtio_blk_replace_backing(of(entry), up->backing_path);
}

static int net_update(struct vm_device *entry, const struct vm_device_update *up)
{
	if (!up->rx_rate_limiter.which && !up->tx_rate_limiter.which)
		return 0;
	return virtio_net_set_rate_limiters(of(entry), up->rx_rate_limiter.cfg,
					    up->rx_rate_limiter.which, up->tx_rate_limiter.cfg,
					    up->tx_rate_limiter.which);
}

static json_t *net_stats(struct vm_device *entry)
{
	struct virtio_net_stats s;
	json_t *o = json_object();

	virtio_net_get_stats(of(entry), &s);
	set_u64(o, "rx_packets", s.rx_packets);
	set_u64(o, "rx_bytes", s.rx_bytes);
	set_u64(o, "rx_dropped", s.rx_dropped);
	set_u64(o, "rx_errors", s.rx_errors);
	set_u64(o, "tx_packets", s.tx_packets);
	set_u64(o, "tx_bytes", s.tx_bytes);
	set_u64(o, "tx_dropped", s.tx_dropped);
	set_u64(o, "tx_errors", s.tx_errors);
	/* Per queue pair, with more than one: which pairs the guest's traffic took. */
	for (unsigned i = 0; s.nr_pairs > 1 && i < s.nr_pairs; i++) {
		char key[32];

		snprintf(key, sizeof(key), "rx_packets_q%u", i);
		set_u64(o, key, s.pairs[i].rx_packets);
		snprintf(key, sizeof(key), "rx_bytes_q%u", i);
		set_u64(o, key, s.pairs[i].rx_bytes);
		snprintf(key, sizeof(key), "tx_packets_q%u", i);
		set_u64(o, key, s.pairs[i].tx_packets);
		snprintf(key, sizeof(key), "tx_bytes_q%u", i);
		set_u64(o, key, s.pairs[i].tx_bytes);
	}
	return o;
}

/* The pairs a multiqueue interface's driver put in use (VQ_PAIRS_SET) are not in the saved
 * state: restored, the guest would send on queues nobody serves. Refused, with the reason. */
static int net_entry_save(struct vm_device *entry, struct state_writer *w)
{
	/* Not -ENOTSUP: vm_devices_save() would log its generic line over this one. */
	if (virtio_net_is_multiqueue(of(entry)))
		return log_set_error(-EINVAL,
				     "network interface %s has several queue pairs (queues=N): "
				     "skiff cannot snapshot or migrate a multiqueue interface; "
				     "use queues=1",
				     vm_device_label(entry));
	return entry_save(entry, w);
}

/* Firecracker's BalloonStats: the target and actual sizes, then each statistic the driver sent. */
static json_t *balloon_stats(struct vm_device *entry)
{
	struct virtio_balloon_stats s;
	json_t *o = json_object();

	virtio_balloon_get_stats(of(entry), &s);
	set_u64(o, "target_pages", s.target_pages);
	set_u64(o, "actual_pages", s.actual_pages);
	set_u64(o, "target_mib", s.target_pages >> 8);
	set_u64(o, "actual_mib", s.actual_pages >> 8);
	for (int i = 0; i < VIRTIO_BALLOON_S_NR; i++)
		if (s.has[i])
			set_u64(o, virtio_balloon_stat_names[i], s.value[i]);
	return o;
}

static int balloon_update(struct vm_device *entry, const struct vm_device_update *up)
{
	int ret = 0;

	if (up->balloon_stats_interval &&
	    (ret = virtio_balloon_set_stats_interval(of(entry), up->balloon_stats_interval_s)))
		return ret;
	if (up->balloon_target)
		ret = virtio_balloon_set_target(of(entry), up->balloon_amount_mib);
	return ret;
}

static const struct vm_device_ops console_entry_ops = {
    .name = "virtio-console",
    .guest_option = "CONFIG_VIRTIO_CONSOLE",
    .guest_module = "virtio_console",
    .guest_driver = entry_guest_driver,
    .destroy = entry_destroy,
    .reset = entry_reset,
    .save = entry_save,
    .restore = entry_restore,
    .hold = entry_hold,
};

static const struct vm_device_ops blk_entry_ops = {
    .name = "virtio-blk",
    .guest_option = "CONFIG_VIRTIO_BLK",
    .guest_module = "virtio_blk",
    .guest_driver = entry_guest_driver,
    .destroy = entry_destroy,
    .reset = entry_reset,
    .save = entry_save,
    .restore = entry_restore,
    .hold = entry_hold,
    .stats = blk_stats,
    .stats_group = "block",
    .update = blk_update,
};

static const struct vm_device_ops net_entry_ops = {
    .name = "virtio-net",
    .guest_option = "CONFIG_VIRTIO_NET",
    .guest_module = "virtio_net",
    .guest_driver = entry_guest_driver,
    .destroy = entry_destroy,
    .reset = entry_reset,
    .save = net_entry_save,
    .restore = entry_restore,
    .hold = entry_hold,
    .stats = net_stats,
    .stats_group = "net",
    .update = net_update,
};

static const struct vm_device_ops rng_entry_ops = {
    .name = "virtio-rng",
    .guest_option = "CONFIG_HW_RANDOM_VIRTIO",
    .guest_module = "virtio_rng",
    .guest_driver = entry_guest_driver,
    .destroy = entry_destroy,
    .reset = entry_reset,
    .save = entry_save,
    .restore = entry_restore,
    .hold = entry_hold,
};

static json_t *vsock_stats(struct vm_device *entry)
{
	struct virtio_vsock_stats s;
	json_t *o = json_object();

	virtio_vsock_get_stats(of(entry), &s);
	set_u64(o, "conns_host", s.conns_host);
	set_u64(o, "conns_guest", s.conns_guest);
	set_u64(o, "conns_open", s.conns_open);
	set_u64(o, "refused", s.refused);
	set_u64(o, "resets", s.resets);
	set_u64(o, "credit_violations", s.credit_violations);
	set_u64(o, "rx_bytes", s.rx_bytes);
	set_u64(o, "tx_bytes", s.tx_bytes);
	set_u64(o, "bad_packets", s.bad_packets);
	return o;
}

static const struct vm_device_ops vsock_entry_ops = {
    .name = "virtio-vsock",
    .guest_option = "CONFIG_VIRTIO_VSOCKETS",
    .guest_module = "vmw_vsock_virtio_transport",
    .guest_driver = entry_guest_driver,
    .destroy = entry_destroy,
    .reset = entry_reset,
    .save = entry_save,
    .restore = entry_restore,
    .hold = entry_hold,
    .stats = vsock_stats,
    .stats_group = "vsock",
};

/* No save or restore: the rings' state lives in the backend process. */
static const struct vm_device_ops fs_entry_ops = {
    .name = "virtio-fs",
    .guest_option = "CONFIG_VIRTIO_FS",
    .guest_module = "virtiofs",
    .guest_driver = entry_guest_driver,
    .destroy = entry_destroy,
    .reset = entry_reset,
};

static const struct vm_device_ops balloon_entry_ops = {
    .name = "virtio-balloon",
    .guest_option = "CONFIG_VIRTIO_BALLOON",
    .guest_module = "virtio_balloon",
    .guest_driver = entry_guest_driver,
    .destroy = entry_destroy,
    .reset = entry_reset,
    .save = entry_save,
    .restore = entry_restore,
    .hold = entry_hold,
    .stats = balloon_stats, /* no stats_group: GET /balloon/statistics asks for it */
    .update = balloon_update,
};

static const struct vm_device_ops *entry_ops(const struct virtio_device *dev,
					     enum vm_device_kind *kind)
{
	switch (dev->ops->device_id) {
	case VIRTIO_ID_CONSOLE:
		*kind = VM_DEVICE_VIRTIO_CONSOLE;
		return &console_entry_ops;
	case VIRTIO_ID_BLOCK:
		*kind = VM_DEVICE_VIRTIO_BLK;
		return &blk_entry_ops;
	case VIRTIO_ID_NET:
		*kind = VM_DEVICE_VIRTIO_NET;
		return &net_entry_ops;
	case VIRTIO_ID_RNG:
		*kind = VM_DEVICE_VIRTIO_RNG;
		return &rng_entry_ops;
	case VIRTIO_ID_VSOCK:
		*kind = VM_DEVICE_VIRTIO_VSOCK;
		return &vsock_entry_ops;
	case VIRTIO_ID_FS:
		*kind = VM_DEVICE_VIRTIO_FS;
		return &fs_entry_ops;
	case VIRTIO_ID_BALLOON:
		*kind = VM_DEVICE_VIRTIO_BALLOON;
		return &balloon_entry_ops;
	}
	return NULL;
}

static struct virtio_entry *new_entry(struct virtio_device *dev, const char *id)
{
	enum vm_device_kind kind;
	const struct vm_device_ops *ops = entry_ops(dev, &kind);
	struct virtio_entry *e;

	if (!ops) {
		log_error("%s: not a device type skiff attaches", dev->name);
		return NULL;
	}
	e = calloc(1, sizeof(*e));
	if (!e) {
		log_error("%s: out of memory", dev->name);
		return NULL;
	}
	vm_device_init(&e->entry, kind, ops, id);
	e->dev = dev;
	return e;
}

struct vm_device *virtio_devices_entry(struct virtio_device *dev, const char *id)
{
	struct virtio_entry *e = new_entry(dev, id);

	return e ? &e->entry : NULL;
}

/* Puts `dev` on PCI bus 0 (--enable-pci) and on the VM's device list. Takes ownership of dev:
 * on failure it is destroyed here. */
static int attach_pci(struct vm *vm, struct virtio_device *dev, const char *id, const char *what)
{
	struct virtio_pci_params p = {
	    .host = vm->pci,
	    .vm_fd = vm->fd,
	    .mem = &vm->mem,
	    .msi = irq_routing_msi(vm->irq_routing),
	};
	struct virtio_entry *e = new_entry(dev, id);
	uint8_t devfn;

	if (!e) {
		dev->ops->destroy(dev);
		return -ENOMEM;
	}
	e->pci = virtio_pci_create(&p, dev);
	if (!e->pci) {
		free(e);
		dev->ops->destroy(dev);
		return -EIO;
	}
	vm_device_add(&vm->devices, &e->entry);
	devfn = virtio_pci_function(e->pci)->devfn;
	log_info("%s at PCI 00:%02x.0 (virtio-pci, MSI-X)%s%s", dev->name, devfn >> 3,
		 what ? ": " : "", what ? what : "");
	return 0;
}

/* Places `dev` in the next virtio-mmio slot, or on PCI with --enable-pci, and on the VM's device
 * list. Takes ownership of dev: on failure it is destroyed here. */
static int attach(struct vm *vm, struct virtio_device *dev, const char *id, const char *what)
{
	struct virtio_mmio_params p = {.bus = &vm->mmio, .vm_fd = vm->fd, .mem = &vm->mem};
	struct virtio_entry *e;
	struct vm_device *entry;
	int index = 0;

	if (vm->pci)
		return attach_pci(vm, dev, id, what);
	vm_devices_for_each(&vm->devices, entry)
		index += entry->virtio_mmio;
	if (index >= VM_MAX_VIRTIO || arch_virtio_mmio_slot(index, &p.base, &p.gsi) != 0) {
		log_error("%s: no free virtio-mmio slot (this platform has %d)", dev->name, index);
		dev->ops->destroy(dev);
		return -ENOSPC;
	}
	e = new_entry(dev, id);
	if (!e) {
		dev->ops->destroy(dev);
		return -ENOMEM;
	}
	e->mmio = virtio_mmio_create(&p, dev);
	if (!e->mmio) {
		free(e);
		dev->ops->destroy(dev);
		return -EIO;
	}
	e->ack_zone = (struct coalesced_zone){
	    .c = &vm->coalesced, .addr = p.base + VIRTIO_MMIO_INTERRUPT_ACK, .size = 4};
	virtio_mmio_batch_ack(e->mmio, coalesced_zone_set, &e->ack_zone);
	e->entry.virtio_mmio = true;
	e->entry.mmio_base = p.base;
	e->entry.gsi = p.gsi;
	vm_device_add(&vm->devices, &e->entry);
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
	ret = vm->disks_unlocked ? virtio_blk_create_unlocked(d, &dev) : virtio_blk_create(d, &dev);
	if (ret)
		return ret;
	return attach(vm, dev, d->id, what);
}

static int create_net(struct vm *vm, int i)
{
	const struct net_config *nc = &vm->cfg->nets[i];
	struct virtio_device *dev;
	char what[80];
	int ret;

	snprintf(what, sizeof(what), "tap %s%s", nc->tap, nc->vhost ? ", vhost-net" : "");
	if (nc->num_queues > 1)
		snprintf(what + strlen(what), sizeof(what) - strlen(what), ", %u queue pairs",
			 nc->num_queues);
	if ((ret = virtio_net_create(nc, &dev)))
		return ret;
	return attach(vm, dev, nc->id, what);
}

static int create_rng(struct vm *vm, int i)
{
	struct virtio_device *dev;
	int ret;

	if ((ret = virtio_rng_create(&vm->cfg->rng_rate_limiter, &dev)))
		return ret;
	return attach(vm, dev, NULL, "host getrandom()");
}

static int create_vsock(struct vm *vm, int i)
{
	const struct vsock_config *v = &vm->cfg->vsock;
	struct virtio_device *dev;
	char what[160];
	int ret;

	snprintf(what, sizeof(what), "guest CID %u, host side %s", v->guest_cid, v->uds_path);
	if ((ret = virtio_vsock_create(v, &dev)))
		return ret;
	return attach(vm, dev, v->id[0] ? v->id : NULL, what);
}

static int create_fs(struct vm *vm, int i)
{
	const struct fs_config *fc = &vm->cfg->fs[i];
	struct virtio_device *dev;
	char what[VM_CONFIG_MAX_PATH + 32];
	int ret;

	snprintf(what, sizeof(what), "vhost-user %s", fc->socket[0] ? fc->socket : fc->shared_dir);
	if ((ret = virtio_fs_create(fc, &dev)))
		return ret;
	return attach(vm, dev, fc->id, what);
}

static int create_balloon(struct vm *vm, int i)
{
	const struct balloon_config *bc = &vm->cfg->balloon;
	struct virtio_balloon_params p = {
	    .amount_mib = bc->amount_mib,
	    .deflate_on_oom = bc->deflate_on_oom,
	    .stats_polling_interval_s = bc->stats_polling_interval_s,
	    .free_page_reporting = bc->free_page_reporting,
	};
	struct virtio_device *dev;
	char what[96];
	int ret;

	snprintf(what, sizeof(what), "target %u MiB%s%s", bc->amount_mib,
		 bc->stats_polling_interval_s ? ", statistics" : "",
		 bc->free_page_reporting ? ", free page reporting" : "");
	if ((ret = virtio_balloon_create(&p, &dev)))
		return ret;
	return attach(vm, dev, NULL, what);
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
	{ &vsock_resource, create_vsock },
	{ &fs_resource, create_fs },
	{ &balloon_resource, create_balloon },
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
	struct vm_device *entry;

	if (!vm->has_irqchip)
		return 0;
	vm_devices_for_each(&vm->devices, entry) {
		int ret;

		if (!entry->virtio_mmio)
			continue;
		ret = virtio_mmio_connect_irq(entry_of(entry)->mmio);
		if (ret)
			return ret;
	}
	return 0;
}
