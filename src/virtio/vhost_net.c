/* virtio-net through the kernel's vhost-net. Everything below runs on the device's worker thread
 * except create, destroy and config_read (see virtio/vhost_net.h). */
#include "virtio/vhost_net.h"
#include "virtio/net_spec.h"
#include "virtio/tap.h"
#include "virtio/virtio.h"
#include "base/event_loop.h"
#include "base/log.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/vhost.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define VHOST_NET_PATH "/dev/vhost-net"

#define RXQ		 0
#define TXQ		 1
#define NR_QUEUES	 2
#define VHOST_QUEUE_SIZE 256

#define BIT(n) (1ULL << (n))

/* The ring features the core offers every driver: vhost must run the rings with them. */
#define NEEDED_FEATURES                                                                            \
	(BIT(VIRTIO_F_VERSION_1) | BIT(VIRTIO_F_INDIRECT_DESC) | BIT(VIRTIO_F_EVENT_IDX))

struct vhost_net_dev;

/* What a queue's eventfd callbacks get. */
struct queue_ref {
	struct vhost_net_dev *vn;
	uint16_t q;
};

struct vhost_net_dev {
	struct virtio_device dev;
	struct queue_ref refs[NR_QUEUES];
	struct net_config_space config;
	int vhost_fd, tap_fd;
	int call_fd[NR_QUEUES];	 /* the kernel's used-buffer notifications, for the worker */
	int err_fd[NR_QUEUES];	 /* the kernel stopped a queue on a driver's mistake */
	int irq_changed_fd;	 /* the transport's direct interrupt eventfds may have changed */
	uint64_t vhost_features; /* VHOST_GET_FEATURES */
	uint64_t host_features;	 /* offered to the driver */

	/* Worker thread only. */
	bool watching;		   /* call_fd and err_fd are in the loop */
	bool running[NR_QUEUES];   /* the kernel has the ring and the tap */
	int given_call[NR_QUEUES]; /* the call eventfd the kernel has: call_fd or the irqfd's */
	bool held;		   /* vn_hold(): the kernel has the rings back at the release */
	bool held_running;	   /* ... when it had them at the hold */
};

static struct vhost_net_dev *to_vn(struct virtio_device *dev)
{
	return dev->priv;
}

/* One vhost request, its failure logged with what it was for. */
static int vhost_ioctl(struct vhost_net_dev *vn, unsigned long req, void *arg, const char *name,
		       int q)
{
	int err;

	if (ioctl(vn->vhost_fd, req, arg) == 0)
		return 0;
	err = errno;
	if (q >= 0)
		log_error("%s: queue %d: %s: %s", vn->dev.name, q, name, strerror(err));
	else
		log_error("%s: %s: %s", vn->dev.name, name, strerror(err));
	return -err;
}

static int set_backend(struct vhost_net_dev *vn, uint16_t q, int fd)
{
	struct vhost_vring_file f = {.index = q, .fd = fd};

	return vhost_ioctl(vn, VHOST_NET_SET_BACKEND, &f, "VHOST_NET_SET_BACKEND", q);
}

/* Takes queue q from the kernel: the tap is detached (the kernel finishes what it was doing) and
 * the ring stopped; where the kernel got to is then in the ring's indices. */
static void stop_queue(struct vhost_net_dev *vn, uint16_t q)
{
	struct virtq *vq = &vn->dev.queues[q];
	struct vhost_vring_state s = {.index = q};

	if (!vn->running[q])
		return;
	vn->running[q] = false;
	set_backend(vn, q, -1);
	if (vhost_ioctl(vn, VHOST_GET_VRING_BASE, &s, "VHOST_GET_VRING_BASE", q) == 0)
		vq->last_avail_idx = (uint16_t)s.num;
	if (vq->used) {
		vq->used_idx = __atomic_load_n(&vq->used->idx, __ATOMIC_ACQUIRE);
		/* The kernel decided about the notifications: the next one is the driver's. */
		vq->signalled_used_valid = false;
	}
}

static void stop_queues(struct vhost_net_dev *vn)
{
	for (uint16_t q = 0; q < NR_QUEUES; q++)
		stop_queue(vn, q);
}

/* Where the kernel signals queue q's used buffers: straight into the guest's interrupt when the
 * transport has an eventfd for that (virtio-pci with MSI-X: the queue's vector, masking kept
 * right by the transport; virtio-mmio: the device's line), so that no thread of skiff's wakes
 * per interrupt; else call_fd, which the worker turns into the interrupt. */
static int call_fd_for(struct vhost_net_dev *vn, uint16_t q)
{
	int fd = vn->dev.direct_irq_fd ? vn->dev.direct_irq_fd(&vn->dev, q) : -1;

	return fd >= 0 ? fd : vn->call_fd[q];
}

static int give_call_fd(struct vhost_net_dev *vn, uint16_t q)
{
	struct vhost_vring_file call = {.index = q, .fd = call_fd_for(vn, q)};
	int ret;

	if (call.fd == vn->given_call[q])
		return 0;
	if ((ret = vhost_ioctl(vn, VHOST_SET_VRING_CALL, &call, "VHOST_SET_VRING_CALL", q)))
		return ret;
	log_debug("%s: queue %u: the kernel signals %s", vn->dev.name, q,
		  call.fd == vn->call_fd[q] ? "the worker" : "the interrupt directly");
	vn->given_call[q] = call.fd;
	return 0;
}

/* Hands queue q to the kernel from where the ring's indices say. */
static int start_queue(struct vhost_net_dev *vn, uint16_t q)
{
	struct virtio_device *dev = &vn->dev;
	struct virtq *vq = &dev->queues[q];
	struct vhost_vring_state num = {.index = q, .num = vq->size};
	struct vhost_vring_state base = {.index = q, .num = vq->last_avail_idx};
	struct vhost_vring_addr addr = {
	    .index = q,
	    .desc_user_addr = (uint64_t)(uintptr_t)vq->desc,
	    .avail_user_addr = (uint64_t)(uintptr_t)vq->avail,
	    .used_user_addr = (uint64_t)(uintptr_t)vq->used,
	};
	struct vhost_vring_file kick = {.index = q, .fd = dev->kick_fd(dev, q)};
	struct vhost_vring_file err = {.index = q, .fd = vn->err_fd[q]};
	int ret;

	if ((ret = vhost_ioctl(vn, VHOST_SET_VRING_NUM, &num, "VHOST_SET_VRING_NUM", q)) ||
	    (ret = vhost_ioctl(vn, VHOST_SET_VRING_BASE, &base, "VHOST_SET_VRING_BASE", q)) ||
	    (ret = vhost_ioctl(vn, VHOST_SET_VRING_ADDR, &addr, "VHOST_SET_VRING_ADDR", q)) ||
	    (ret = vhost_ioctl(vn, VHOST_SET_VRING_KICK, &kick, "VHOST_SET_VRING_KICK", q)) ||
	    (ret = vhost_ioctl(vn, VHOST_SET_VRING_ERR, &err, "VHOST_SET_VRING_ERR", q)))
		return ret;
	vn->given_call[q] = -1; /* the kernel's is set again, whatever it was */
	if ((ret = give_call_fd(vn, q)))
		return ret;
	/* The ring runs from here. */
	vn->running[q] = true;
	if ((ret = set_backend(vn, q, vn->tap_fd))) {
		stop_queue(vn, q);
		return ret;
	}
	return 0;
}

/* Every region of guest memory, as the kernel translates the driver's buffer addresses. */
static int set_mem_table(struct vhost_net_dev *vn)
{
	const struct guest_mem *mem = vn->dev.mem;
	struct {
		struct vhost_memory hdr;
		struct vhost_memory_region regions[GUEST_MEM_MAX_REGIONS];
	} table = {.hdr.nregions = (uint32_t)mem->nr_regions};

	for (int i = 0; i < mem->nr_regions; i++)
		table.regions[i] = (struct vhost_memory_region){
		    .guest_phys_addr = mem->regions[i].gpa,
		    .memory_size = mem->regions[i].size,
		    .userspace_addr = (uint64_t)(uintptr_t)mem->regions[i].hva,
		};
	return vhost_ioctl(vn, VHOST_SET_MEM_TABLE, &table, "VHOST_SET_MEM_TABLE", -1);
}

/* ---- The kernel's eventfds, on the worker ---- */

/* A used-buffer notification: the interrupt, through the core. */
static void call_event(void *ctx, uint32_t events)
{
	struct queue_ref *ref = ctx;
	uint64_t count;

	if (read(ref->vn->call_fd[ref->q], &count, sizeof(count)) < 0)
		return;
	ref->vn->dev.signal_used(&ref->vn->dev, ref->q);
}

/* The kernel found the driver breaking a rule on this queue (a descriptor outside guest memory,
 * a chain too long, ...) and stopped serving it. */
static void err_event(void *ctx, uint32_t events)
{
	struct queue_ref *ref = ctx;
	struct vhost_net_dev *vn = ref->vn;
	uint64_t count;

	if (read(vn->err_fd[ref->q], &count, sizeof(count)) < 0)
		return;
	if (!vn->running[ref->q])
		return;
	stop_queues(vn);
	virtio_dev_fail(&vn->dev, ref->q,
			"the kernel's vhost-net refused the driver's ring (see the host's kernel "
			"log)");
}

/* The driver turned MSI-X on or off or changed a queue's vector: the running queues' call
 * eventfds follow. A signal the kernel sent to the old one is not lost: call_fd is still
 * watched, and a vector's eventfd keeps it pending while the vector is off. */
static void irq_changed_event(void *ctx, uint32_t events)
{
	struct vhost_net_dev *vn = ctx;
	uint64_t count;

	if (read(vn->irq_changed_fd, &count, sizeof(count)) < 0)
		return;
	for (uint16_t q = 0; q < NR_QUEUES && !vn->dev.failed; q++)
		if (vn->running[q] && give_call_fd(vn, q) < 0) {
			stop_queues(vn);
			virtio_dev_fail(&vn->dev, q, "vhost-net did not take the new call eventfd");
		}
}

static void vn_direct_irq_changed(struct virtio_device *dev)
{
	struct vhost_net_dev *vn = to_vn(dev);

	/* Never blocks: the counter cannot come near overflowing. */
	if (eventfd_write(vn->irq_changed_fd, 1) < 0)
		log_error("%s: eventfd write: %s", dev->name, strerror(errno));
}

static int watch(struct vhost_net_dev *vn)
{
	int err;

	if (vn->watching)
		return 0;
	if ((err = event_loop_add(vn->dev.loop, vn->irq_changed_fd, EPOLLIN, irq_changed_event,
				  vn))) {
		log_error("%s: cannot watch its eventfd: %s", vn->dev.name, strerror(-err));
		return err;
	}
	for (uint16_t q = 0; q < NR_QUEUES; q++)
		if ((err = event_loop_add(vn->dev.loop, vn->call_fd[q], EPOLLIN, call_event,
					  &vn->refs[q])) ||
		    (err = event_loop_add(vn->dev.loop, vn->err_fd[q], EPOLLIN, err_event,
					  &vn->refs[q]))) {
			log_error("%s: cannot watch the kernel's eventfds: %s", vn->dev.name,
				  strerror(-err));
			return err;
		}
	vn->watching = true;
	return 0;
}

/* ---- virtio_device_ops ---- */

static uint64_t vn_features(struct virtio_device *dev)
{
	return to_vn(dev)->host_features;
}

static void vn_config_read(struct virtio_device *dev, uint32_t off, void *data, uint32_t len)
{
	memcpy(data, (const uint8_t *)&to_vn(dev)->config + off, len);
}

static int vn_activate(struct virtio_device *dev)
{
	struct vhost_net_dev *vn = to_vn(dev);
	/* The ring and header features are the kernel's business; the offloads are the tap's. */
	uint64_t features = dev->features & vn->vhost_features;
	unsigned tun = tap_guest_offloads(dev->features);
	int err, direct = 0;

	if (!dev->queues[RXQ].ready || !dev->queues[TXQ].ready) {
		log_error("%s: the driver did not set up both the RX and the TX queue", dev->name);
		return -EINVAL;
	}
	err = tap_set_offload(vn->tap_fd, tun);
	if (err < 0) {
		log_error("%s: cannot set the tap's offloads to %#x: %s", dev->name, tun,
			  strerror(-err));
		return err;
	}
	if ((err = watch(vn)) ||
	    (err = vhost_ioctl(vn, VHOST_SET_FEATURES, &features, "VHOST_SET_FEATURES", -1)) ||
	    (err = set_mem_table(vn)))
		return err;
	for (uint16_t q = 0; q < NR_QUEUES; q++)
		if ((err = start_queue(vn, q))) {
			stop_queues(vn);
			return err;
		}
	for (uint16_t q = 0; q < NR_QUEUES; q++)
		direct += vn->given_call[q] != vn->call_fd[q];
	if (direct)
		log_info("%s: vhost-net interrupts the guest itself on %d of %d queues (irqfd)",
			 dev->name, direct, NR_QUEUES);
	log_debug("%s: rings handed to vhost-net (features %#llx)", dev->name,
		  (unsigned long long)features);
	return 0;
}

/* Kicks go to the kernel: the core calls this once after activation, nothing to do. */
static void vn_queue_notify(struct virtio_device *dev, uint16_t q)
{
}

/* Gives the kernel back the rings it had before stop_queues(). */
static void restart_queues(struct vhost_net_dev *vn)
{
	for (uint16_t q = 0; q < NR_QUEUES && !vn->dev.failed; q++)
		if (start_queue(vn, q) < 0)
			virtio_dev_fail(&vn->dev, q, "vhost-net did not take the ring back");
}

/* Before a snapshot's save: the indices the core saves must be where the kernel got to, and
 * nothing may move meanwhile; the VM then goes on, so the rings are handed back. */
static void vn_quiesce(struct virtio_device *dev)
{
	struct vhost_net_dev *vn = to_vn(dev);
	bool was_running = vn->running[RXQ] || vn->running[TXQ];

	stop_queues(vn);
	if (was_running && !vn->held)
		restart_queues(vn);
}

/* Held (a snapshot, a handoff): the kernel's worker would go on filling RX buffers, so it gives
 * the rings back until the release. */
static void vn_hold(struct virtio_device *dev, bool held)
{
	struct vhost_net_dev *vn = to_vn(dev);

	if (held) {
		vn->held_running = vn->held_running || vn->running[RXQ] || vn->running[TXQ];
		vn->held = true;
		stop_queues(vn);
		return;
	}
	vn->held = false;
	if (vn->held_running)
		restart_queues(vn);
	vn->held_running = false;
}

static void vn_reset(struct virtio_device *dev)
{
	struct vhost_net_dev *vn = to_vn(dev);
	int err;

	stop_queues(vn);
	vn->held_running = false; /* reset while held: nothing to give back */
	err = tap_set_offload(vn->tap_fd, 0);
	if (err < 0)
		log_warn("%s: cannot clear the tap's offloads: %s", dev->name, strerror(-err));
}

static void close_fds(struct vhost_net_dev *vn)
{
	for (uint16_t q = 0; q < NR_QUEUES; q++) {
		if (vn->call_fd[q] >= 0)
			close(vn->call_fd[q]);
		if (vn->err_fd[q] >= 0)
			close(vn->err_fd[q]);
	}
	if (vn->irq_changed_fd >= 0)
		close(vn->irq_changed_fd);
	if (vn->vhost_fd >= 0)
		close(vn->vhost_fd);
}

static void vn_destroy(struct virtio_device *dev)
{
	struct vhost_net_dev *vn = to_vn(dev);

	/* After reset: the kernel holds no ring. Closing the vhost fd ends its worker. */
	close_fds(vn);
	close(vn->tap_fd);
	log_debug("%s: vhost-net and tap closed", dev->name);
	free(vn);
}

static const struct virtio_device_ops vhost_net_ops = {
    .device_id = VIRTIO_ID_NET,
    .nr_queues = NR_QUEUES,
    .queue_max_size = VHOST_QUEUE_SIZE,
    .config_size = sizeof(struct net_config_space),
    .backend_queues = true,
    .features = vn_features,
    .config_read = vn_config_read,
    .activate = vn_activate,
    .queue_notify = vn_queue_notify,
    .quiesce = vn_quiesce,
    .hold = vn_hold,
    .reset = vn_reset,
    .destroy = vn_destroy,
    .direct_irq_changed = vn_direct_irq_changed,
};

bool vhost_net_is(const struct virtio_device *dev)
{
	return dev && dev->ops == &vhost_net_ops;
}

/* ---- Creation ---- */

/* The largest offload set the tap accepts, trying smaller ones on refusal; leaves it at 0. */
static uint64_t features_for(unsigned offloads, uint64_t vhost_features)
{
	uint64_t f =
	    BIT(VIRTIO_NET_F_MAC) | BIT(VIRTIO_NET_F_STATUS) | tap_offload_features(offloads);

	if (vhost_features & BIT(VIRTIO_NET_F_MRG_RXBUF))
		f |= BIT(VIRTIO_NET_F_MRG_RXBUF);
	return f;
}

static int open_vhost(struct vhost_net_dev *vn)
{
	int err;

	vn->vhost_fd = open(VHOST_NET_PATH, O_RDWR | O_CLOEXEC);
	if (vn->vhost_fd < 0) {
		err = errno;
		if (err == ENOENT)
			log_error("%s: vhost=on: %s does not exist (load the vhost_net module: "
				  "modprobe vhost_net)",
				  vn->dev.name, VHOST_NET_PATH);
		else
			log_error("%s: vhost=on: cannot open %s: %s%s", vn->dev.name,
				  VHOST_NET_PATH, strerror(err),
				  err == EACCES ? " (skiff needs read and write access to it)"
						: "");
		return -err;
	}
	/* The kernel's worker works in this process's memory from now on. */
	if ((err = vhost_ioctl(vn, VHOST_SET_OWNER, NULL, "VHOST_SET_OWNER", -1)) ||
	    (err = vhost_ioctl(vn, VHOST_GET_FEATURES, &vn->vhost_features, "VHOST_GET_FEATURES",
			       -1)))
		return err;
	if ((vn->vhost_features & NEEDED_FEATURES) != NEEDED_FEATURES) {
		log_error("%s: vhost-net lacks VERSION_1, INDIRECT_DESC or EVENT_IDX (it offers "
			  "%#llx)",
			  vn->dev.name, (unsigned long long)vn->vhost_features);
		return -ENOTSUP;
	}
	return 0;
}

int vhost_net_create(const struct net_config *cfg, int tap_fd, struct virtio_device **out)
{
	struct vhost_net_dev *vn = calloc(1, sizeof(*vn));
	unsigned offloads;
	int err;

	if (!vn) {
		log_error("virtio-net %s: out of memory", cfg->tap);
		return -ENOMEM;
	}
	vn->dev.ops = &vhost_net_ops;
	vn->dev.priv = vn;
	vn->tap_fd = tap_fd;
	vn->vhost_fd = -1;
	snprintf(vn->dev.name, sizeof(vn->dev.name), "virtio-net %s",
		 cfg->id[0] ? cfg->id : cfg->tap);
	for (uint16_t q = 0; q < NR_QUEUES; q++)
		vn->call_fd[q] = vn->err_fd[q] = vn->given_call[q] = -1;
	vn->irq_changed_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vn->irq_changed_fd < 0) {
		err = -errno;
		log_error("%s: eventfd: %s", vn->dev.name, strerror(errno));
		goto fail;
	}
	for (uint16_t q = 0; q < NR_QUEUES; q++) {
		vn->refs[q] = (struct queue_ref){.vn = vn, .q = q};
		vn->call_fd[q] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		vn->err_fd[q] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (vn->call_fd[q] < 0 || vn->err_fd[q] < 0) {
			err = -errno;
			log_error("%s: eventfd: %s", vn->dev.name, strerror(errno));
			goto fail;
		}
	}
	if ((err = open_vhost(vn)))
		goto fail;

	if ((err = net_config_space_init(&vn->config, cfg, vn->dev.name)))
		goto fail;
	offloads = tap_probe_offloads(tap_fd, tap_set_offload);
	vn->host_features = features_for(offloads, vn->vhost_features);
	log_debug("%s: vhost-net features %#llx, tap offloads %#x, device features %#llx",
		  vn->dev.name, (unsigned long long)vn->vhost_features, offloads,
		  (unsigned long long)vn->host_features);
	*out = &vn->dev;
	return 0;

fail:
	close_fds(vn);
	free(vn);
	return err;
}
