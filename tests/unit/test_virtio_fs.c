/* virtio-fs (virtio/fs.c) between the test driver (virtio_driver.h) and a fake vhost-user
 * backend thread on a socketpair: activation hands the backend guest memory and both rings
 * (addresses, kick and call eventfds); a request the backend answers reaches the driver through
 * the call eventfd; when the backend dies, the device answers the request the backend never did
 * and every later one with a FUSE error (EIO), and returns hiprio buffers empty. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "virtio/fs.h"
#include "virtio/vhost_user.h"
#include "virtio/virtio.h"
#include "virtio_driver.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define MiB	  (1ULL << 20)
#define QSIZE	  16
#define BUF_GPA	  0x100000ULL
#define FEATURES  ((1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_F_INDIRECT_DESC) |         \
		   (1ull << VIRTIO_F_EVENT_IDX) | (1ull << VHOST_USER_F_PROTOCOL_FEATURES))

struct fuse_in_header {
	uint32_t len, opcode;
	uint64_t unique, nodeid;
	uint32_t uid, gid, pid;
	uint16_t total_extlen, padding;
};

struct fuse_out_header {
	uint32_t len;
	int32_t error;
	uint64_t unique;
};

struct msg {
	struct vhost_user_header hdr;
	union vhost_user_payload p;
	int fds[VHOST_USER_MAX_REGIONS];
	int nr_fds;
};

struct backend {
	int fd;
	pthread_t thread;
	int kick[2], call[2];
	struct vhost_user_vring_addr addr[2];
	uint32_t num[2];
	int regions;
	bool activated, answered_one, ok;
	int call_sets; /* SET_VRING_CALL messages (__atomic) */
	int stop_pipe[2]; /* the test tells the backend to die */
};

static bool recv_msg(int fd, struct msg *m)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * VHOST_USER_MAX_REGIONS)];
		struct cmsghdr align;
	} control;
	struct iovec iov = {.iov_base = &m->hdr, .iov_len = sizeof(m->hdr)};
	struct msghdr mh = {.msg_iov = &iov,
			    .msg_iovlen = 1,
			    .msg_control = control.buf,
			    .msg_controllen = sizeof(control.buf)};

	memset(&m->p, 0, sizeof(m->p));
	m->nr_fds = 0;
	if (recvmsg(fd, &mh, MSG_WAITALL) != (ssize_t)sizeof(m->hdr))
		return false;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		m->nr_fds = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		memcpy(m->fds, CMSG_DATA(c), sizeof(int) * (size_t)m->nr_fds);
	}
	return m->hdr.size <= sizeof(m->p) &&
	       (m->hdr.size == 0 ||
		recv(fd, &m->p, m->hdr.size, MSG_WAITALL) == (ssize_t)m->hdr.size);
}

static void reply_u64(struct backend *b, uint32_t request, uint64_t v)
{
	struct {
		struct vhost_user_header hdr;
		uint64_t v;
	} __attribute__((packed)) r = {{request, VHOST_USER_VERSION | VHOST_USER_REPLY_FLAG, 8},
				       v};

	if (write(b->fd, &r, sizeof(r)) != sizeof(r))
		b->ok = false;
}

/* Serves one message; false on EOF or a message it does not expect. */
static bool serve(struct backend *b)
{
	struct msg m;
	uint32_t q;

	if (!recv_msg(b->fd, &m))
		return false;
	q = m.p.state.index;
	switch (m.hdr.request) {
	case VHOST_USER_SET_OWNER:
	case VHOST_USER_SET_PROTOCOL_FEATURES:
		break;
	case VHOST_USER_GET_FEATURES:
		reply_u64(b, m.hdr.request, FEATURES);
		return true;
	case VHOST_USER_GET_PROTOCOL_FEATURES:
		reply_u64(b, m.hdr.request, 1ull << VHOST_USER_PROTOCOL_F_REPLY_ACK);
		return true;
	case VHOST_USER_SET_FEATURES:
		b->ok = b->ok && (m.p.u64 & (1ull << VIRTIO_F_VERSION_1));
		break;
	case VHOST_USER_SET_MEM_TABLE:
		b->regions = m.nr_fds;
		for (int i = 0; i < m.nr_fds; i++)
			close(m.fds[i]);
		break;
	case VHOST_USER_SET_VRING_NUM:
		b->num[q & 1] = m.p.state.num;
		break;
	case VHOST_USER_SET_VRING_ADDR:
		b->addr[m.p.addr.index & 1] = m.p.addr;
		break;
	case VHOST_USER_SET_VRING_BASE:
		break;
	case VHOST_USER_SET_VRING_KICK:
		b->kick[m.p.u64 & 1] = m.nr_fds ? m.fds[0] : -1;
		break;
	case VHOST_USER_SET_VRING_CALL:
		if (b->call[m.p.u64 & 1] >= 0)
			close(b->call[m.p.u64 & 1]);
		__atomic_store_n(&b->call[m.p.u64 & 1], m.nr_fds ? m.fds[0] : -1, __ATOMIC_SEQ_CST);
		__atomic_fetch_add(&b->call_sets, 1, __ATOMIC_SEQ_CST);
		break;
	case VHOST_USER_GET_VRING_BASE:
		reply_u64(b, m.hdr.request, q); /* index q, base 0 */
		return true;
	case VHOST_USER_SET_VRING_ENABLE:
		if ((m.p.state.index & 1) == 1 && m.p.state.num)
			__atomic_store_n(&b->activated, true, __ATOMIC_SEQ_CST);
		break;
	default:
		b->ok = false;
		return false;
	}
	if (m.hdr.flags & VHOST_USER_NEED_REPLY_FLAG)
		reply_u64(b, m.hdr.request, 0);
	return true;
}

/* Answers the request queue's first chain itself, through the rings' host addresses, then
 * leaves the next one unanswered and dies when told. */
static void *run_backend(void *arg)
{
	struct backend *b = arg;

	b->ok = true;
	while (!b->activated && serve(b))
		;
	if (b->activated) {
		struct pollfd pfd[2] = {{.fd = b->kick[1], .events = POLLIN},
					{.fd = b->stop_pipe[0], .events = POLLIN}};
		struct virtq_avail *avail = (void *)(uintptr_t)b->addr[1].avail;
		struct virtq_used *used = (void *)(uintptr_t)b->addr[1].used;
		uint64_t n, one = 1;

		/* The driver's kick arrives on the eventfd the device gave. */
		if (poll(pfd, 1, 5000) == 1 && read(b->kick[1], &n, sizeof(n)) == sizeof(n) &&
		    __atomic_load_n(&avail->idx, __ATOMIC_ACQUIRE) == 1) {
			used->ring[0] = (struct virtq_used_elem){.id = avail->ring[0], .len = 0};
			__atomic_store_n(&used->idx, 1, __ATOMIC_RELEASE);
			b->answered_one = write(b->call[1], &one, sizeof(one)) == sizeof(one);
		}
		/* Now it ignores kicks until it is told to die. */
		poll(&pfd[1], 1, 10000);
	}
	close(b->fd);
	for (int q = 0; q < 2; q++) {
		if (b->kick[q] >= 0)
			close(b->kick[q]);
		if (b->call[q] >= 0)
			close(b->call[q]);
	}
	return NULL;
}

static uint16_t add_request(struct vdrv *h, int q, uint64_t unique, uint64_t *reply_gpa)
{
	struct fuse_in_header in = {.len = sizeof(in), .opcode = 1, .unique = unique};
	struct vdrv_seg s[2];

	s[0] = (struct vdrv_seg){.gpa = vdrv_alloc(h, sizeof(in)), .len = sizeof(in)};
	memcpy(vdrv_ptr(h, s[0].gpa, sizeof(in)), &in, sizeof(in));
	if (!reply_gpa)
		return vdrv_add_chain(h, q, s, 1);
	s[1] = (struct vdrv_seg){.gpa = vdrv_alloc(h, 64), .len = 64, .write = true};
	*reply_gpa = s[1].gpa;
	return vdrv_add_chain(h, q, s, 2);
}

static void kick(struct vdrv *h, int q)
{
	uint64_t one = 1;

	assert_int_equal(write(h->kick_fds[q], &one, sizeof(one)), sizeof(one));
}

static void test_backend_then_eio(void **state)
{
	struct guest_region layout[] = {{.gpa = 0, .size = 4 * MiB}};
	struct vdrv_config cfg = {.layout = layout,
				  .nr_regions = 1,
				  .buf_base = BUF_GPA,
				  .buf_end = 4 * MiB,
				  .buf_align = 64,
				  .loop_name = "test-fs",
				  .shared_mem = true};
	struct backend b = {.kick = {-1, -1}, .call = {-1, -1}};
	struct virtio_device *dev;
	struct vdrv h;
	uint64_t reply1, reply2;
	uint8_t config[40];
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(pipe(b.stop_pipe), 0);
	b.fd = sv[1];
	assert_int_equal(pthread_create(&b.thread, NULL, run_backend, &b), 0);

	vdrv_init(&h, &cfg);
	assert_int_equal(virtio_fs_create_on_fd("docs", sv[0], &dev), 0);
	assert_int_equal(dev->ops->device_id, VIRTIO_ID_FS);
	assert_int_equal(dev->ops->nr_queues, 2);
	assert_true(dev->ops->backend_queues);
	/* Config space: the tag, NUL-padded to 36 bytes, then one request queue. */
	dev->ops->config_read(dev, 0, config, sizeof(config));
	assert_memory_equal(config, "docs\0\0\0\0", 8);
	assert_int_equal(config[36], 1);
	vdrv_attach(&h, dev);
	vdrv_ring_layout(&h, 0, QSIZE, 0x10000, 0x11000, 0x12000);
	vdrv_ring_layout(&h, 1, QSIZE, 0x20000, 0x21000, 0x22000);
	vdrv_start(&h, (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_F_EVENT_IDX));

	/* The backend got guest memory (one region, its fd), both rings and their eventfds. */
	assert_int_equal(b.regions, 1);
	assert_int_equal(b.num[1], QSIZE);
	assert_int_equal(b.addr[1].desc, (uint64_t)(uintptr_t)vdrv_ptr(&h, 0x20000, 1));
	assert_int_equal(b.addr[1].used, (uint64_t)(uintptr_t)vdrv_ptr(&h, 0x22000, 1));

	/* A request the backend answers: the kick reaches it without skiff, its call the driver. */
	add_request(&h, 1, 0x111, &reply1);
	kick(&h, 1);
	assert_true(vdrv_wait_used_idx(&h, 1, 1));
	for (int i = 0; i < 500 && !__atomic_load_n(&h.signals[1], __ATOMIC_SEQ_CST); i++)
		usleep(10000);
	assert_true(__atomic_load_n(&h.signals[1], __ATOMIC_SEQ_CST) >= 1);

	/* A request the backend takes and never answers; then it dies. */
	add_request(&h, 1, 0x222, &reply2);
	kick(&h, 1);
	assert_int_equal(write(b.stop_pipe[1], "x", 1), 1);
	pthread_join(b.thread, NULL);
	assert_true(b.ok);
	assert_true(b.answered_one);

	/* The device answers the orphaned request with EIO... */
	assert_true(vdrv_wait_used_idx(&h, 1, 2));
	{
		struct virtq_used_elem e = vdrv_used_elem(&h, 1, 1);
		struct fuse_out_header *out = vdrv_ptr(&h, reply2, sizeof(*out));

		assert_int_equal(e.len, sizeof(*out));
		assert_int_equal(out->len, sizeof(*out));
		assert_int_equal(out->error, -EIO);
		assert_int_equal(out->unique, 0x222);
	}
	/* ...and every later one, on a kick through the same eventfd. */
	add_request(&h, 1, 0x333, &reply1);
	kick(&h, 1);
	assert_true(vdrv_wait_used_idx(&h, 1, 3));
	assert_int_equal(((struct fuse_out_header *)vdrv_ptr(&h, reply1, 16))->unique, 0x333);
	assert_int_equal(((struct fuse_out_header *)vdrv_ptr(&h, reply1, 16))->error, -EIO);
	/* With EVENT_IDX the device asks for the next kick (avail_event), or the driver would
	 * never kick again. */
	assert_int_equal(vdrv_avail_event(&h, 1), 3);
	/* A FORGET on the hiprio queue goes back empty. */
	add_request(&h, 0, 0x444, NULL);
	kick(&h, 0);
	assert_true(vdrv_wait_used_idx(&h, 0, 1));
	assert_int_equal(vdrv_used_elem(&h, 0, 0).len, 0);
	assert_false(dev->failed);

	vdrv_fini(&h);
	close(b.stop_pipe[0]);
	close(b.stop_pipe[1]);
}

/* A backend that is gone before the driver sets DRIVER_OK: activation still succeeds, and the
 * requests fail with EIO. */
static void *serve_open_then_die(void *arg)
{
	struct backend *b = arg;

	b->ok = true;
	for (int i = 0; i < 4; i++)
		if (!serve(b))
			b->ok = false;
	close(b->fd);
	return NULL;
}

static void test_dead_before_activation(void **state)
{
	struct guest_region layout[] = {{.gpa = 0, .size = 4 * MiB}};
	struct vdrv_config cfg = {.layout = layout,
				  .nr_regions = 1,
				  .buf_base = BUF_GPA,
				  .buf_end = 4 * MiB,
				  .loop_name = "test-fs2",
				  .shared_mem = true};
	struct backend b = {.kick = {-1, -1}, .call = {-1, -1}};
	struct virtio_device *dev;
	struct vdrv h;
	uint64_t reply;
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	b.fd = sv[1];
	assert_int_equal(pthread_create(&b.thread, NULL, serve_open_then_die, &b), 0);
	vdrv_init(&h, &cfg);
	assert_int_equal(virtio_fs_create_on_fd("t", sv[0], &dev), 0);
	pthread_join(b.thread, NULL);
	assert_true(b.ok);
	vdrv_attach(&h, dev);
	vdrv_ring_layout(&h, 0, QSIZE, 0x10000, 0x11000, 0x12000);
	vdrv_ring_layout(&h, 1, QSIZE, 0x20000, 0x21000, 0x22000);
	vdrv_start(&h, 1ull << VIRTIO_F_VERSION_1);
	add_request(&h, 1, 0x555, &reply);
	kick(&h, 1);
	assert_true(vdrv_wait_used_idx(&h, 1, 1));
	assert_int_equal(((struct fuse_out_header *)vdrv_ptr(&h, reply, 16))->error, -EIO);
	vdrv_fini(&h);
}

/* The transport's direct interrupt eventfd (virtio-pci's MSI-X irqfd), as a test stands in for
 * it: on while direct_on. */
static int direct_fd = -1;
static bool direct_on;

static int test_direct_irq_fd(struct virtio_device *dev, uint16_t q)
{
	return __atomic_load_n(&direct_on, __ATOMIC_SEQ_CST) ? direct_fd : -1;
}

static void *serve_all(void *arg)
{
	struct backend *b = arg;

	b->ok = true;
	while (serve(b))
		;
	return NULL;
}

static void signal_fd(int fd)
{
	uint64_t one = 1;

	assert_int_equal(write(fd, &one, sizeof(one)), sizeof(one));
}

static bool readable(int fd, int ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	uint64_t n;

	if (poll(&p, 1, ms) != 1)
		return false;
	assert_int_equal(read(fd, &n, sizeof(n)), sizeof(n));
	return true;
}

static void wait_call_sets(struct backend *b, int n)
{
	for (int i = 0; i < 500 && __atomic_load_n(&b->call_sets, __ATOMIC_SEQ_CST) < n; i++)
		usleep(10000);
	assert_int_equal(__atomic_load_n(&b->call_sets, __ATOMIC_SEQ_CST), n);
}

/* Where the transport has a direct interrupt eventfd, the backend gets it as the rings' call
 * eventfd, and its signals reach the interrupt without the worker; when the transport says the
 * answer changed (MSI-X turned off), the worker gives the backend its own call eventfd again,
 * whose signals it turns into signal_used; a change that changes nothing sends nothing. */
static void test_direct_interrupts(void **state)
{
	struct guest_region layout[] = {{.gpa = 0, .size = 4 * MiB}};
	struct vdrv_config cfg = {.layout = layout,
				  .nr_regions = 1,
				  .buf_base = BUF_GPA,
				  .buf_end = 4 * MiB,
				  .loop_name = "test-fs3",
				  .shared_mem = true};
	struct backend b = {.kick = {-1, -1}, .call = {-1, -1}};
	struct virtio_device *dev;
	struct vdrv h;
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	b.fd = sv[1];
	assert_int_equal(pthread_create(&b.thread, NULL, serve_all, &b), 0);
	vdrv_init(&h, &cfg);
	assert_int_equal(virtio_fs_create_on_fd("direct", sv[0], &dev), 0);
	vdrv_attach(&h, dev);
	dev->direct_irq_fd = test_direct_irq_fd;
	direct_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	assert_true(direct_fd >= 0);
	__atomic_store_n(&direct_on, true, __ATOMIC_SEQ_CST);
	vdrv_ring_layout(&h, 0, QSIZE, 0x10000, 0x11000, 0x12000);
	vdrv_ring_layout(&h, 1, QSIZE, 0x20000, 0x21000, 0x22000);
	vdrv_start(&h, (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_F_EVENT_IDX));
	wait_call_sets(&b, 2);
	for (int i = 0; i < 500 && !__atomic_load_n(&b.activated, __ATOMIC_SEQ_CST); i++)
		usleep(10000);

	/* Both queues signal the direct eventfd; the worker hears nothing. */
	for (int q = 0; q < 2; q++) {
		signal_fd(__atomic_load_n(&b.call[q], __ATOMIC_SEQ_CST));
		assert_true(readable(direct_fd, 1000));
	}
	usleep(50000);
	assert_int_equal(__atomic_load_n(&h.signals[1], __ATOMIC_SEQ_CST), 0);

	/* MSI-X off: the backend gets the device's own call eventfds again. */
	__atomic_store_n(&direct_on, false, __ATOMIC_SEQ_CST);
	dev->ops->direct_irq_changed(dev);
	wait_call_sets(&b, 4);
	signal_fd(__atomic_load_n(&b.call[1], __ATOMIC_SEQ_CST));
	for (int i = 0; i < 500 && !__atomic_load_n(&h.signals[1], __ATOMIC_SEQ_CST); i++)
		usleep(10000);
	assert_int_equal(__atomic_load_n(&h.signals[1], __ATOMIC_SEQ_CST), 1);
	assert_false(readable(direct_fd, 0));

	/* Nothing changed: no message. */
	dev->ops->direct_irq_changed(dev);
	usleep(100000);
	assert_int_equal(__atomic_load_n(&b.call_sets, __ATOMIC_SEQ_CST), 4);
	/* On again. */
	__atomic_store_n(&direct_on, true, __ATOMIC_SEQ_CST);
	dev->ops->direct_irq_changed(dev);
	wait_call_sets(&b, 6);

	vdrv_fini(&h); /* GET_VRING_BASE, then the socket closes */
	pthread_join(b.thread, NULL);
	assert_true(b.ok);
	for (int q = 0; q < 2; q++) {
		close(b.call[q]);
		close(b.kick[q]);
	}
	close(sv[1]);
	close(direct_fd);
}

/* A backend without the transport features skiff offers the driver is refused at creation. */
static void *serve_old_backend(void *arg)
{
	struct backend *b = arg;
	struct msg m;

	if (recv_msg(b->fd, &m) && recv_msg(b->fd, &m))
		reply_u64(b, VHOST_USER_GET_FEATURES, 1ull << VIRTIO_F_VERSION_1);
	while (recv_msg(b->fd, &m))
		;
	return NULL;
}

static void test_backend_lacks_features(void **state)
{
	struct backend b = {0};
	struct virtio_device *dev = NULL;
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	b.fd = sv[1];
	assert_int_equal(pthread_create(&b.thread, NULL, serve_old_backend, &b), 0);
	assert_int_equal(virtio_fs_create_on_fd("t", sv[0], &dev), -ENOTSUP);
	assert_null(dev);
	pthread_join(b.thread, NULL);
	close(sv[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_backend_then_eio),
	    cmocka_unit_test(test_dead_before_activation),
	    cmocka_unit_test(test_direct_interrupts),
	    cmocka_unit_test(test_backend_lacks_features),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
