#include "virtio/fs.h"
#include "virtio/vhost_user.h"
#include "virtio/virtio.h"
#include "virtio/virtiofsd.h"
#include "base/event_loop.h"
#include "base/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define FS_HIPRIO_QUEUE	 0 /* FORGET and INTERRUPT: no replies */
#define FS_REQUEST_QUEUE 1 /* one request queue */
#define FS_NR_QUEUES	 2
#define FS_QUEUE_SIZE	 1024
#define FS_CONFIG_SIZE	 40 /* tag[36], le32 num_request_queues */

/* The FUSE headers the device reads and writes when it answers for a dead backend. */
#define FUSE_IN_UNIQUE_OFFSET 8
struct fuse_out_header {
	uint32_t len;
	int32_t error;
	uint64_t unique;
};

/* The transport features the core offers: the backend must handle them on its rings. */
#define NEEDED_FEATURES                                                                            \
	((1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_F_INDIRECT_DESC) |                         \
	 (1ull << VIRTIO_F_EVENT_IDX))

struct virtio_fs;

/* What a queue's eventfd callbacks get: its device and index. */
struct fs_queue_ref {
	struct virtio_fs *fs;
	uint16_t q;
};

struct virtio_fs {
	struct virtio_device dev;
	struct fs_queue_ref refs[FS_NR_QUEUES];
	char tag[VM_CONFIG_MAX_FS_TAG];
	struct vhost_user vu;
	struct virtiofsd daemon; /* pid 0: the user runs the backend */
	int call_fd[FS_NR_QUEUES];
	/* Signalled (any thread) when the transport's direct interrupt eventfds may have changed:
	 * the worker then gives the backend the right call eventfds (update_call_fds). */
	int irq_changed_fd;

	/* Worker thread only. */
	bool watching;		      /* the socket and call eventfds are in the worker's loop */
	bool started[FS_NR_QUEUES];   /* rings handed to the backend */
	int given_call[FS_NR_QUEUES]; /* the call eventfd the backend has, while started */
	bool backend_lost;	      /* the device answers requests itself from now on */
	bool answering[FS_NR_QUEUES]; /* ...on this queue: its kick eventfd is watched here */
	bool active;
	struct virtq_elem elem;
};

static struct virtio_fs *to_fs(struct virtio_device *dev)
{
	return dev->priv;
}

static void fs_config_read(struct virtio_device *dev, uint32_t off, void *data, uint32_t len)
{
	struct virtio_fs *fs = to_fs(dev);
	uint8_t config[FS_CONFIG_SIZE] = {0};
	uint32_t queues = 1;

	memcpy(config, fs->tag, sizeof(fs->tag));
	memcpy(config + 36, &queues, sizeof(queues));
	memcpy(data, config + off, len);
}

/* ---- Answering for a dead backend ---- */

static void answer_queue(struct virtio_fs *fs, uint16_t q)
{
	struct virtio_device *dev = &fs->dev;
	struct virtq *vq = &dev->queues[q];
	struct virtq_elem *e = &fs->elem;
	bool pushed = false;

	while (!dev->failed) {
		struct fuse_out_header out = {.len = sizeof(out), .error = -EIO};
		uint32_t written = 0;
		int r = virtq_pop_armed(vq, e);

		if (r < 0)
			virtio_dev_fail(dev, q, "%s", vq->error);
		if (r <= 0)
			break;
		/* The hiprio queue's requests (FORGET, INTERRUPT) take no reply. */
		if (q != FS_HIPRIO_QUEUE && e->in_len >= sizeof(out) &&
		    virtq_elem_read(e, FUSE_IN_UNIQUE_OFFSET, &out.unique, sizeof(out.unique)) ==
			sizeof(out.unique))
			written = (uint32_t)virtq_elem_write(e, 0, &out, sizeof(out));
		virtq_push(vq, e->head, written);
		pushed = true;
	}
	if (pushed && virtq_should_notify(vq))
		dev->signal_used(dev, q);
}

static void answer_kicked(void *ctx, uint32_t events)
{
	struct fs_queue_ref *ref = ctx;
	uint64_t count;

	if (read(ref->fs->dev.kick_fd(&ref->fs->dev, ref->q), &count, sizeof(count)) < 0)
		return;
	answer_queue(ref->fs, ref->q);
}

/* Takes the running queues over from the backend: the requests it never answered and every
 * later one get EIO. */
static void start_answering(struct virtio_fs *fs)
{
	struct virtio_device *dev = &fs->dev;

	for (uint16_t q = 0; q < FS_NR_QUEUES; q++) {
		struct virtq *vq = &dev->queues[q];
		int fd = dev->kick_fd(dev, q);

		if (!vq->ready || !vq->used || fs->answering[q])
			continue;
		/* Where the backend got to: the driver waits for the chains after used->idx. */
		vq->used_idx = __atomic_load_n(&vq->used->idx, __ATOMIC_ACQUIRE);
		vq->last_avail_idx = vq->used_idx;
		vq->signalled_used_valid = false;
		if (event_loop_add(dev->loop, fd, EPOLLIN, answer_kicked, &fs->refs[q]) == 0)
			fs->answering[q] = true;
		answer_queue(fs, q);
	}
}

static void stop_answering(struct virtio_fs *fs)
{
	for (uint16_t q = 0; q < FS_NR_QUEUES; q++) {
		if (fs->answering[q])
			event_loop_del(fs->dev.loop, fs->dev.kick_fd(&fs->dev, q));
		fs->answering[q] = false;
	}
}

/* The backend is gone (or unusable): says so once, stops listening to it and, while the driver
 * runs the device, answers its requests. */
static void lose_backend(struct virtio_fs *fs, const char *why)
{
	size_t n = strlen(fs->dev.name);

	if (fs->backend_lost)
		return;
	/* A reason from vhost_user.c names the device already. */
	if (strncmp(why, fs->dev.name, n) == 0 && strncmp(why + n, ": ", 2) == 0)
		why += n + 2;
	fs->backend_lost = true;
	log_error("%s: the vhost-user backend is gone (%s); the guest's requests now fail with "
		  "EIO",
		  fs->dev.name, why);
	if (fs->watching && fs->vu.fd >= 0)
		event_loop_del(fs->dev.loop, fs->vu.fd);
	vhost_user_close(&fs->vu);
	/* A virtiofsd skiff started: its exit status, if it is ending (its socket closing is
	 * usually the last thing it does; wait a moment, never long). */
	for (int i = 0; i < 20 && fs->daemon.pid > 0 && !virtiofsd_reap(&fs->daemon); i++)
		usleep(10000);
	memset(fs->started, 0, sizeof(fs->started));
	for (uint16_t q = 0; q < FS_NR_QUEUES; q++)
		fs->given_call[q] = -1;
	if (fs->active)
		start_answering(fs);
}

/* ---- The backend's socket and call eventfds, on the worker ---- */

/* Nothing may arrive between our requests: a closed socket is a dead backend, data is a
 * backend that does not follow the protocol. */
static void backend_event(void *ctx, uint32_t events)
{
	struct virtio_fs *fs = ctx;
	char byte;
	ssize_t n = recv(fs->vu.fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	lose_backend(fs, n == 0 ? "its socket closed" : n < 0 ? strerror(errno)
							 : "it sent an unrequested message");
}

/* A used-buffer notification from the backend: the interrupt, through the core (which keeps the
 * transport's interrupt status). */
static void call_event(void *ctx, uint32_t events)
{
	struct fs_queue_ref *ref = ctx;
	uint64_t count;

	if (read(ref->fs->call_fd[ref->q], &count, sizeof(count)) < 0)
		return;
	ref->fs->dev.signal_used(&ref->fs->dev, ref->q);
}

/* Where the backend signals queue q's used buffers: straight into the guest's interrupt when the
 * transport has an eventfd for that (virtio-pci with MSI-X: the vector's irqfd, the transport
 * keeping masking right; virtio-mmio: the device's irqfd, its InterruptStatus always saying a
 * used buffer), so that no thread of skiff's wakes; else our call eventfd, which the worker
 * turns into the interrupt (virtio-pci without MSI-X, no KVM). */
static int backend_call_fd(struct virtio_fs *fs, uint16_t q)
{
	int fd = fs->dev.direct_irq_fd ? fs->dev.direct_irq_fd(&fs->dev, q) : -1;

	return fd >= 0 ? fd : fs->call_fd[q];
}

static int give_call_fd(struct virtio_fs *fs, uint16_t q)
{
	int fd = backend_call_fd(fs, q), err;

	if (fd == fs->given_call[q])
		return 0;
	if ((err = vhost_user_set_vring_call(&fs->vu, q, fd)))
		return err;
	log_debug("%s: queue %u: the backend signals %s", fs->dev.name, q,
		  fd == fs->call_fd[q] ? "the worker" : "the interrupt directly");
	fs->given_call[q] = fd;
	return 0;
}

/* The driver turned MSI-X on or off (or assigned a vector): the running queues' call eventfds
 * follow. A signal the backend sent to the old one is not lost: ours is still watched, and a
 * vector's eventfd keeps it pending while the vector is off. */
static void irq_changed_event(void *ctx, uint32_t events)
{
	struct virtio_fs *fs = ctx;
	uint64_t count;

	if (read(fs->irq_changed_fd, &count, sizeof(count)) < 0)
		return;
	for (uint16_t q = 0; q < FS_NR_QUEUES && !fs->backend_lost; q++)
		if (fs->started[q] && give_call_fd(fs, q) < 0)
			lose_backend(fs, log_last_error());
}

static void fs_direct_irq_changed(struct virtio_device *dev)
{
	struct virtio_fs *fs = to_fs(dev);

	/* Never blocks: the counter cannot come near overflowing. */
	if (eventfd_write(fs->irq_changed_fd, 1) < 0)
		log_error("%s: eventfd write: %s", dev->name, strerror(errno));
}

static int watch(struct virtio_fs *fs)
{
	static const uint32_t events = EPOLLIN | EPOLLRDHUP;
	struct virtio_device *dev = &fs->dev;
	int err;

	if (fs->watching)
		return 0;
	if ((err = event_loop_add(dev->loop, fs->vu.fd, events, backend_event, fs)))
		return err;
	for (uint16_t q = 0; q < FS_NR_QUEUES; q++)
		if ((err = event_loop_add(dev->loop, fs->call_fd[q], EPOLLIN, call_event,
					  &fs->refs[q])))
			return err;
	if ((err = event_loop_add(dev->loop, fs->irq_changed_fd, EPOLLIN, irq_changed_event, fs)))
		return err;
	fs->watching = true;
	return 0;
}

/* ---- The virtio device ---- */

static void fs_queue_notify(struct virtio_device *dev, uint16_t q)
{
	struct virtio_fs *fs = to_fs(dev);

	if (fs->answering[q])
		answer_queue(fs, q);
}

/* Hands the ready rings to the backend. */
static int give_rings(struct virtio_fs *fs)
{
	struct virtio_device *dev = &fs->dev;
	struct vhost_user *vu = &fs->vu;
	int err, direct = 0;

	if ((err = vhost_user_set_features(vu, dev->features)) ||
	    (err = vhost_user_set_mem_table(vu, dev->mem)))
		return err;
	for (uint16_t q = 0; q < FS_NR_QUEUES; q++) {
		struct virtq *vq = &dev->queues[q];

		if (!vq->ready)
			continue;
		if ((err = vhost_user_set_vring_num(vu, q, vq->size)) ||
		    (err = vhost_user_set_vring_addr(vu, q, vq->desc, vq->avail, vq->used)) ||
		    (err = vhost_user_set_vring_base(vu, q, 0)) || (err = give_call_fd(fs, q)) ||
		    (err = vhost_user_set_vring_kick(vu, q, dev->kick_fd(dev, q))) ||
		    (err = vhost_user_set_vring_enable(vu, q, true)))
			return err;
		fs->started[q] = true;
		direct += fs->given_call[q] != fs->call_fd[q];
	}
	if (direct)
		log_info("%s: the backend interrupts the guest itself on %d of %d queues (irqfd)",
			 dev->name, direct, FS_NR_QUEUES);
	return 0;
}

static int fs_activate(struct virtio_device *dev)
{
	struct virtio_fs *fs = to_fs(dev);
	int err;

	fs->active = true;
	if (!fs->backend_lost && (err = watch(fs))) {
		log_error("%s: cannot watch the backend's socket: %s", dev->name, strerror(-err));
		return err;
	}
	if (!fs->backend_lost && give_rings(fs) < 0)
		lose_backend(fs, log_last_error());
	if (fs->backend_lost)
		start_answering(fs);
	return 0;
}

static void fs_reset(struct virtio_device *dev)
{
	struct virtio_fs *fs = to_fs(dev);

	stop_answering(fs);
	for (uint16_t q = 0; q < FS_NR_QUEUES && !fs->backend_lost; q++) {
		uint32_t base;

		if (fs->started[q] && (vhost_user_get_vring_base(&fs->vu, q, &base) < 0 ||
				       vhost_user_set_vring_enable(&fs->vu, q, false) < 0))
			lose_backend(fs, log_last_error());
		fs->started[q] = false;
		fs->given_call[q] = -1;
	}
	fs->active = false;
}

static void fs_destroy(struct virtio_device *dev)
{
	struct virtio_fs *fs = to_fs(dev);

	/* A virtiofsd of ours that died unnoticed (the driver never started the device): say so
	 * before closing its socket ends it anyway. */
	virtiofsd_reap(&fs->daemon);
	vhost_user_close(&fs->vu);
	for (uint16_t q = 0; q < FS_NR_QUEUES; q++)
		if (fs->call_fd[q] >= 0)
			close(fs->call_fd[q]);
	if (fs->irq_changed_fd >= 0)
		close(fs->irq_changed_fd);
	virtiofsd_stop(&fs->daemon);
	free(fs);
}

static const struct virtio_device_ops fs_ops = {
    .device_id = VIRTIO_ID_FS,
    .nr_queues = FS_NR_QUEUES,
    .queue_max_size = FS_QUEUE_SIZE,
    .config_size = FS_CONFIG_SIZE,
    .backend_queues = true,
    .config_read = fs_config_read,
    .activate = fs_activate,
    .direct_irq_changed = fs_direct_irq_changed,
    .queue_notify = fs_queue_notify,
    .reset = fs_reset,
    .destroy = fs_destroy,
};

static struct virtio_fs *new_fs(const char *tag)
{
	struct virtio_fs *fs = calloc(1, sizeof(*fs));

	if (!fs) {
		log_error("virtio-fs %s: out of memory", tag);
		return NULL;
	}
	fs->dev.ops = &fs_ops;
	fs->dev.priv = fs;
	fs->vu.fd = -1;
	fs->irq_changed_fd = -1;
	memcpy(fs->tag, tag, strnlen(tag, sizeof(fs->tag)));
	snprintf(fs->dev.name, sizeof(fs->dev.name), "virtio-fs %.30s", tag);
	for (uint16_t q = 0; q < FS_NR_QUEUES; q++)
		fs->call_fd[q] = fs->given_call[q] = -1;
	fs->irq_changed_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (fs->irq_changed_fd < 0) {
		log_error("%s: eventfd: %s", fs->dev.name, strerror(errno));
		fs_destroy(&fs->dev);
		return NULL;
	}
	for (uint16_t q = 0; q < FS_NR_QUEUES; q++) {
		fs->refs[q] = (struct fs_queue_ref){.fs = fs, .q = q};
		fs->call_fd[q] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (fs->call_fd[q] < 0) {
			log_error("%s: eventfd: %s", fs->dev.name, strerror(errno));
			fs_destroy(&fs->dev);
			return NULL;
		}
	}
	return fs;
}

/* The session on a connected socket: the backend must run split rings as the core offers them. */
static int open_session(struct virtio_fs *fs, int fd)
{
	int err = vhost_user_open(&fs->vu, fd, fs->dev.name);

	if (err)
		return err;
	if ((fs->vu.features & NEEDED_FEATURES) != NEEDED_FEATURES)
		return log_set_error(-ENOTSUP,
				     "%s: the backend lacks VERSION_1, INDIRECT_DESC or EVENT_IDX "
				     "(it offers %#llx)",
				     fs->dev.name, (unsigned long long)fs->vu.features);
	if (fs->vu.queue_num && fs->vu.queue_num < FS_NR_QUEUES)
		return log_set_error(-ENOTSUP, "%s: the backend has %u queues; %d are needed",
				     fs->dev.name, fs->vu.queue_num, FS_NR_QUEUES);
	return 0;
}

int virtio_fs_create_on_fd(const char *tag, int fd, struct virtio_device **out)
{
	struct virtio_fs *fs = new_fs(tag);
	int err;

	if (!fs) {
		close(fd);
		return -ENOMEM;
	}
	if ((err = open_session(fs, fd))) {
		log_error("%s", log_last_error());
		fs_destroy(&fs->dev);
		return err;
	}
	*out = &fs->dev;
	return 0;
}

int virtio_fs_create(const struct fs_config *cfg, struct virtio_device **out)
{
	struct virtio_fs *fs = new_fs(cfg->tag);
	const char *socket = cfg->socket;
	int fd, err;

	if (!fs)
		return -ENOMEM;
	if (cfg->shared_dir[0]) {
		if ((err = virtiofsd_start(&fs->daemon, cfg->shared_dir, fs->dev.name)))
			goto fail;
		socket = fs->daemon.socket;
	}
	fd = vhost_user_connect(socket);
	if (fd < 0) {
		log_error("%s: %s", fs->dev.name, log_last_error());
		fs_destroy(&fs->dev);
		return fd;
	}
	if ((err = open_session(fs, fd)))
		goto fail;
	*out = &fs->dev;
	return 0;
fail:
	/* The reason names the device already. */
	log_error("%s", log_last_error());
	fs_destroy(&fs->dev);
	return err;
}
