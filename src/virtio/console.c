/* virtio-console (virtio 1.x 5.3): one port, no multiport, no emergency write. Queue 0 (receiveq)
 * carries host input to the guest, queue 1 (transmitq) guest output to out_fd.
 *
 * Host input is taken on any thread into a bounded ring under a mutex, and an eventfd wakes the
 * worker, which copies the ring into the guest's receive buffers. Input that finds no receive
 * buffer (or no driver yet) stays in the ring; when the ring is full, virtio_console_receive()
 * takes nothing and its caller offers the bytes again later, so nothing typed is lost.
 *
 * Guest output is written with one writev() per chain on the worker thread. When out_fd is
 * non-blocking and full, the chain is kept and the worker waits for EPOLLOUT on out_fd: output is
 * neither dropped nor spun on. Only a broken out_fd (closed reader, I/O error) loses output.
 *
 * VIRTIO_CONSOLE_F_SIZE is not offered: Linux read cols and rows in the opposite order to the
 * specification until 2025 (commit 5326ab737a47), so any size given would be transposed on one
 * kernel generation or the other. The guest starts with a 0x0 window and `stty` can set it. */
#include "virtio/console.h"
#include "virtio/virtio.h"
#include "base/event_loop.h"
#include "base/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/uio.h>
#include <unistd.h>

#define CONSOLE_RECEIVEQ   0
#define CONSOLE_TRANSMITQ  1
#define CONSOLE_QUEUE_SIZE 256
#define CONSOLE_RX_BUFFER  4096 /* host input held for the guest */

/* 5.3.4 Device configuration layout. Without F_SIZE and F_MULTIPORT the driver reads none of it;
 * it is there so that a driver probing it reads zeros rather than an error. */
struct virtio_console_config {
	uint16_t cols;
	uint16_t rows;
	uint32_t max_nr_ports;
	uint32_t emerg_wr;
} __attribute__((packed));

struct virtio_console {
	struct virtio_device dev;
	int out_fd;
	int wake_fd; /* eventfd: host input was added to the ring */

	/* Host input for the guest, filled by virtio_console_receive() on any thread. */
	pthread_mutex_t rx_lock;
	uint8_t rx[CONSOLE_RX_BUFFER];
	size_t rx_head, rx_count;

	/* Worker thread only. */
	bool activated;
	bool wake_registered;
	bool tx_pending; /* tx_elem is popped and partly written */
	bool tx_waiting; /* out_fd is full: waiting for EPOLLOUT */
	bool tx_error_logged;
	size_t tx_done; /* bytes of tx_elem already written */
	struct virtq_elem tx_elem;
	struct virtq_elem rx_elem;
	struct iovec tx_iov[VIRTQ_MAX_SEGS];
};

static struct virtio_console *to_console(struct virtio_device *dev)
{
	return dev->priv;
}

static uint64_t console_features(struct virtio_device *dev)
{
	return 0;
}

static void console_config_read(struct virtio_device *dev, uint32_t off, void *data, uint32_t len)
{
	const struct virtio_console_config cfg = {.max_nr_ports = 1};

	memcpy(data, (const uint8_t *)&cfg + off, len);
}

/* A queue the driver never made ready is not used: its rings were never checked. */
static struct virtq *usable_queue(struct virtio_console *vc, uint16_t q)
{
	struct virtq *vq = &vc->dev.queues[q];

	if (!vc->activated || vc->dev.failed || !vq->ready)
		return NULL;
	return vq;
}

/* Takes the next chain, or returns 0 when the ring is empty after re-enabling notifications (so
 * that a chain added meanwhile is not missed), or -EINVAL after failing the device. */
static int pop_chain(struct virtio_console *vc, uint16_t q, struct virtq_elem *e)
{
	struct virtq *vq = &vc->dev.queues[q];
	int r = virtq_pop_armed(vq, e);

	if (r < 0)
		virtio_dev_fail(&vc->dev, q, "%s", vq->error);
	return r;
}

/* Moves buffered host input into the guest's receive buffers. */
static void rx_flush(struct virtio_console *vc)
{
	struct virtq *vq = usable_queue(vc, CONSOLE_RECEIVEQ);
	struct virtq_elem *e = &vc->rx_elem;
	bool pushed = false;

	while (vq && !vc->dev.failed) {
		size_t avail, written = 0;

		pthread_mutex_lock(&vc->rx_lock);
		avail = vc->rx_count;
		pthread_mutex_unlock(&vc->rx_lock);
		if (avail == 0 || pop_chain(vc, CONSOLE_RECEIVEQ, e) <= 0)
			break;
		if (e->nr_out > 0) {
			virtio_dev_fail(&vc->dev, CONSOLE_RECEIVEQ,
					"receive chain %u has device-readable buffers", e->head);
			break;
		}
		pthread_mutex_lock(&vc->rx_lock);
		while (vc->rx_count > 0 && written < e->in_len) {
			size_t run = CONSOLE_RX_BUFFER - vc->rx_head;
			size_t n;

			if (run > vc->rx_count)
				run = vc->rx_count;
			n = virtq_elem_write(e, written, vc->rx + vc->rx_head, run);
			if (n == 0)
				break;
			written += n;
			vc->rx_head = (vc->rx_head + n) % CONSOLE_RX_BUFFER;
			vc->rx_count -= n;
		}
		pthread_mutex_unlock(&vc->rx_lock);
		virtq_push(vq, e->head, (uint32_t)written);
		pushed = true;
	}
	if (pushed)
		vc->dev.signal_used(&vc->dev, CONSOLE_RECEIVEQ);
}

static void wake_event(void *ctx, uint32_t events)
{
	struct virtio_console *vc = ctx;
	uint64_t count;

	if (read(vc->wake_fd, &count, sizeof(count)) < 0 && errno != EAGAIN)
		log_warn("%s: reading the wakeup eventfd: %s", vc->dev.name, strerror(errno));
	rx_flush(vc);
}

size_t virtio_console_receive(struct virtio_device *dev, const uint8_t *buf, size_t len)
{
	struct virtio_console *vc = to_console(dev);
	size_t taken = 0;

	pthread_mutex_lock(&vc->rx_lock);
	while (taken < len && vc->rx_count < CONSOLE_RX_BUFFER) {
		size_t tail = (vc->rx_head + vc->rx_count) % CONSOLE_RX_BUFFER;
		/* Free bytes from tail up to the ring's end or to the oldest byte. */
		size_t run = tail >= vc->rx_head ? CONSOLE_RX_BUFFER - tail : vc->rx_head - tail;

		if (run > len - taken)
			run = len - taken;
		memcpy(vc->rx + tail, buf + taken, run);
		vc->rx_count += run;
		taken += run;
	}
	pthread_mutex_unlock(&vc->rx_lock);
	if (taken > 0 && eventfd_write(vc->wake_fd, 1) < 0 && errno != EAGAIN)
		log_warn("%s: waking the worker: %s", dev->name, strerror(errno));
	return taken;
}

static void tx_writable(void *ctx, uint32_t events);

/* Writes the rest of tx_elem to out_fd. Returns 0 when the chain is done (written, or lost to a
 * broken out_fd), -EAGAIN when out_fd is full. */
static int tx_write(struct virtio_console *vc)
{
	const struct virtq_elem *e = &vc->tx_elem;

	if (vc->out_fd < 0)
		return 0;
	while (vc->tx_done < e->out_len) {
		size_t skip = vc->tx_done;
		int nr = 0;
		ssize_t n;

		for (unsigned i = 0; i < e->nr_out; i++) {
			if (skip >= e->iov[i].iov_len) {
				skip -= e->iov[i].iov_len;
				continue;
			}
			vc->tx_iov[nr].iov_base = (uint8_t *)e->iov[i].iov_base + skip;
			vc->tx_iov[nr].iov_len = e->iov[i].iov_len - skip;
			skip = 0;
			nr++;
		}
		n = writev(vc->out_fd, vc->tx_iov, nr);
		if (n > 0) {
			vc->tx_done += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return -EAGAIN;
		/* A closed or broken reader: the guest must go on regardless. */
		if (!vc->tx_error_logged) {
			vc->tx_error_logged = true;
			log_warn("%s: dropping guest output: %s", vc->dev.name,
				 n < 0 ? strerror(errno) : "nothing written");
		}
		return 0;
	}
	return 0;
}

/* Writes the guest's pending output, chain by chain, until the ring is empty or out_fd is full. */
static void tx_process(struct virtio_console *vc)
{
	struct virtq *vq = usable_queue(vc, CONSOLE_TRANSMITQ);
	struct virtq_elem *e = &vc->tx_elem;
	bool pushed = false;

	while (vq && !vc->tx_waiting && !vc->dev.failed) {
		if (!vc->tx_pending) {
			if (pop_chain(vc, CONSOLE_TRANSMITQ, e) <= 0)
				break;
			if (e->nr_in > 0) {
				virtio_dev_fail(&vc->dev, CONSOLE_TRANSMITQ,
						"transmit chain %u has device-writable buffers",
						e->head);
				break;
			}
			vc->tx_pending = true;
			vc->tx_done = 0;
		}
		if (tx_write(vc) == -EAGAIN) {
			int r = event_loop_add(vc->dev.loop, vc->out_fd, EPOLLOUT, tx_writable, vc);

			if (r == 0) {
				vc->tx_waiting = true;
				break;
			}
			log_warn("%s: cannot wait for the output to drain (%s): dropping output",
				 vc->dev.name, strerror(-r));
		}
		virtq_push(vq, e->head, 0);
		vc->tx_pending = false;
		pushed = true;
	}
	if (pushed)
		vc->dev.signal_used(&vc->dev, CONSOLE_TRANSMITQ);
}

static void tx_stop_waiting(struct virtio_console *vc)
{
	if (vc->tx_waiting) {
		event_loop_del(vc->dev.loop, vc->out_fd);
		vc->tx_waiting = false;
	}
}

static void tx_writable(void *ctx, uint32_t events)
{
	struct virtio_console *vc = ctx;

	tx_stop_waiting(vc);
	tx_process(vc);
}

static int console_activate(struct virtio_device *dev)
{
	struct virtio_console *vc = to_console(dev);
	int r;

	if (!vc->wake_registered) {
		r = event_loop_add(dev->loop, vc->wake_fd, EPOLLIN, wake_event, vc);
		if (r < 0) {
			log_error("%s: cannot watch the input eventfd: %s", dev->name,
				  strerror(-r));
			return r;
		}
		vc->wake_registered = true;
	}
	vc->activated = true;
	/* Input typed before the driver was ready goes out now, if the guest gave buffers. */
	rx_flush(vc);
	tx_process(vc);
	return 0;
}

static void console_queue_notify(struct virtio_device *dev, uint16_t q)
{
	struct virtio_console *vc = to_console(dev);

	if (q == CONSOLE_RECEIVEQ)
		rx_flush(vc);
	else if (q == CONSOLE_TRANSMITQ)
		tx_process(vc);
}

/* Buffered host input survives a reset: it was typed for the guest, whose driver will come back. */
static void console_reset(struct virtio_device *dev)
{
	struct virtio_console *vc = to_console(dev);

	tx_stop_waiting(vc);
	vc->tx_pending = false;
	vc->tx_done = 0;
	if (vc->wake_registered) {
		event_loop_del(dev->loop, vc->wake_fd);
		vc->wake_registered = false;
	}
	vc->activated = false;
}

static void console_destroy(struct virtio_device *dev)
{
	struct virtio_console *vc = to_console(dev);

	close(vc->wake_fd);
	pthread_mutex_destroy(&vc->rx_lock);
	free(vc);
}

static const struct virtio_device_ops console_ops = {
    .device_id = VIRTIO_ID_CONSOLE,
    .nr_queues = 2,
    .queue_max_size = CONSOLE_QUEUE_SIZE,
    .config_size = sizeof(struct virtio_console_config),
    .features = console_features,
    .config_read = console_config_read,
    .activate = console_activate,
    .queue_notify = console_queue_notify,
    .reset = console_reset,
    .destroy = console_destroy,
};

int virtio_console_create(int out_fd, struct virtio_device **out)
{
	struct virtio_console *vc = calloc(1, sizeof(*vc));

	if (!vc) {
		log_error("virtio-console: out of memory");
		return -ENOMEM;
	}
	vc->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (vc->wake_fd < 0) {
		int r = -errno;

		log_error("virtio-console: eventfd: %s", strerror(errno));
		free(vc);
		return r;
	}
	pthread_mutex_init(&vc->rx_lock, NULL);
	vc->out_fd = out_fd;
	vc->dev.ops = &console_ops;
	vc->dev.priv = vc;
	snprintf(vc->dev.name, sizeof(vc->dev.name), "virtio-console");
	*out = &vc->dev;
	return 0;
}
