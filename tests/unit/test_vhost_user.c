/* The vhost-user frontend (virtio/vhost_user.c) against a fake backend on the other end of a
 * socketpair, run by a thread: the session's opening (features, protocol features, queue count),
 * the messages' encoding as the backend decodes them (payloads, the fds of SET_MEM_TABLE and
 * SET_VRING_KICK), acks, and a backend that dies, replies garbage, stays silent or refuses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "virtio/vhost_user.h"
#include "base/guest_mem.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#define PROTO_ALL ((1ull << VHOST_USER_PROTOCOL_F_MQ) | (1ull << VHOST_USER_PROTOCOL_F_REPLY_ACK) | \
		   (1ull << 9) /* CONFIG: not wanted */)
#define BACKEND_FEATURES ((1ull << 32) | (1ull << 28) | (1ull << 29) | \
			  (1ull << VHOST_USER_F_PROTOCOL_FEATURES))

/* One message as the backend read it. */
struct msg {
	struct vhost_user_header hdr;
	union vhost_user_payload p;
	int fds[VHOST_USER_MAX_REGIONS];
	int nr_fds;
};

struct backend {
	int fd;
	pthread_t thread;
	void (*script)(struct backend *b);
	/* What the script saw, for the test to check after joining. */
	struct msg seen[16];
	int nr_seen;
	uint64_t kick_value; /* read through the kick fd the frontend sent */
	bool ok;
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
	ssize_t n = recvmsg(fd, &mh, MSG_WAITALL);

	memset(&m->p, 0, sizeof(m->p));
	m->nr_fds = 0;
	if (n != (ssize_t)sizeof(m->hdr))
		return false;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_type != SCM_RIGHTS)
			continue;
		m->nr_fds = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		memcpy(m->fds, CMSG_DATA(c), sizeof(int) * (size_t)m->nr_fds);
	}
	if (m->hdr.size > sizeof(m->p))
		return false;
	return m->hdr.size == 0 ||
	       recv(fd, &m->p, m->hdr.size, MSG_WAITALL) == (ssize_t)m->hdr.size;
}

static bool next(struct backend *b, uint32_t request, struct msg *m)
{
	if (!recv_msg(b->fd, m) || m->hdr.request != request ||
	    (m->hdr.flags & VHOST_USER_VERSION_MASK) != VHOST_USER_VERSION)
		return false;
	if (b->nr_seen < 16)
		b->seen[b->nr_seen++] = *m;
	return true;
}

static void reply(struct backend *b, uint32_t request, const void *payload, uint32_t size)
{
	struct vhost_user_header hdr = {.request = request,
					.flags = VHOST_USER_VERSION | VHOST_USER_REPLY_FLAG,
					.size = size};
	char buf[sizeof(hdr) + sizeof(union vhost_user_payload)];

	memcpy(buf, &hdr, sizeof(hdr));
	memcpy(buf + sizeof(hdr), payload, size);
	assert_int_equal(write(b->fd, buf, sizeof(hdr) + size), (ssize_t)(sizeof(hdr) + size));
}

static void reply_u64(struct backend *b, uint32_t request, uint64_t v)
{
	reply(b, request, &v, sizeof(v));
}

/* The opening a frontend makes, answered as a backend with every protocol feature would. */
static bool serve_open(struct backend *b, uint64_t features)
{
	struct msg m;

	if (!next(b, VHOST_USER_SET_OWNER, &m) || !next(b, VHOST_USER_GET_FEATURES, &m))
		return false;
	reply_u64(b, VHOST_USER_GET_FEATURES, features);
	if (!(features & (1ull << VHOST_USER_F_PROTOCOL_FEATURES)))
		return true;
	if (!next(b, VHOST_USER_GET_PROTOCOL_FEATURES, &m))
		return false;
	reply_u64(b, VHOST_USER_GET_PROTOCOL_FEATURES, PROTO_ALL);
	if (!next(b, VHOST_USER_SET_PROTOCOL_FEATURES, &m) ||
	    m.p.u64 != ((1ull << VHOST_USER_PROTOCOL_F_MQ) |
			(1ull << VHOST_USER_PROTOCOL_F_REPLY_ACK)) ||
	    (m.hdr.flags & VHOST_USER_NEED_REPLY_FLAG))
		return false;
	if (!next(b, VHOST_USER_GET_QUEUE_NUM, &m))
		return false;
	reply_u64(b, VHOST_USER_GET_QUEUE_NUM, 2);
	return true;
}

static void *run_backend(void *arg)
{
	struct backend *b = arg;

	b->script(b);
	return NULL;
}

static void start(struct backend *b, struct vhost_user *vu, void (*script)(struct backend *))
{
	int sv[2];

	memset(b, 0, sizeof(*b));
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	b->fd = sv[1];
	b->script = script;
	vu->fd = sv[0]; /* vhost_user_open takes it */
	assert_int_equal(pthread_create(&b->thread, NULL, run_backend, b), 0);
}

static void finish(struct backend *b)
{
	pthread_join(b->thread, NULL);
	if (b->fd >= 0)
		close(b->fd);
}

/* ---- A whole session, as virtio-fs makes it ---- */

static void script_session(struct backend *b)
{
	struct msg m;
	uint64_t ack0 = 0;

	if (!serve_open(b, BACKEND_FEATURES))
		return;
	/* With REPLY_ACK, every request without a reply asks for an ack. */
	if (!next(b, VHOST_USER_SET_FEATURES, &m) || !(m.hdr.flags & VHOST_USER_NEED_REPLY_FLAG))
		return;
	reply_u64(b, VHOST_USER_SET_FEATURES, ack0);
	if (!next(b, VHOST_USER_SET_MEM_TABLE, &m))
		return;
	/* The regions' fds map the same pages the frontend wrote. */
	for (int i = 0; i < m.nr_fds; i++) {
		char *p = mmap(NULL, 4096, PROT_READ, MAP_SHARED, m.fds[i], 0);

		if (p == MAP_FAILED || p[0] != (char)('A' + i))
			return;
		munmap(p, 4096);
		close(m.fds[i]);
	}
	reply_u64(b, VHOST_USER_SET_MEM_TABLE, ack0);
	if (!next(b, VHOST_USER_SET_VRING_ADDR, &m))
		return;
	reply_u64(b, VHOST_USER_SET_VRING_ADDR, ack0);
	if (!next(b, VHOST_USER_SET_VRING_KICK, &m) || m.nr_fds != 1)
		return;
	if (read(m.fds[0], &b->kick_value, sizeof(b->kick_value)) != sizeof(b->kick_value))
		return;
	close(m.fds[0]);
	reply_u64(b, VHOST_USER_SET_VRING_KICK, ack0);
	if (!next(b, VHOST_USER_SET_VRING_CALL, &m) || m.nr_fds != 0)
		return;
	reply_u64(b, VHOST_USER_SET_VRING_CALL, ack0);
	if (!next(b, VHOST_USER_GET_VRING_BASE, &m))
		return;
	reply(b, VHOST_USER_GET_VRING_BASE,
	      &(struct vhost_user_vring_state){.index = m.p.state.index, .num = 77},
	      sizeof(struct vhost_user_vring_state));
	b->ok = true;
}

static void test_session(void **state)
{
	struct guest_region layout[] = {{.gpa = 0, .size = 1 << 20},
					{.gpa = 1ull << 32, .size = 1 << 20}};
	struct guest_mem mem;
	struct vhost_user vu;
	struct backend b;
	uint32_t base = 0;
	int kick = eventfd(0, EFD_CLOEXEC);
	uint64_t seven = 7;

	assert_int_equal(guest_mem_map_shared(&mem, layout, 2), 0);
	assert_true(mem.shared);
	mem.regions[0].hva[0] = 'A';
	mem.regions[1].hva[0] = 'B';
	assert_int_equal(write(kick, &seven, sizeof(seven)), sizeof(seven));

	start(&b, &vu, script_session);
	assert_int_equal(vhost_user_open(&vu, vu.fd, "test-fs"), 0);
	assert_true(vu.features & (1ull << 32));
	assert_int_equal(vu.protocol_features, (1ull << VHOST_USER_PROTOCOL_F_MQ) |
						   (1ull << VHOST_USER_PROTOCOL_F_REPLY_ACK));
	assert_int_equal(vu.queue_num, 2);
	assert_int_equal(vhost_user_set_features(&vu, 1ull << 32), 0);
	assert_int_equal(vhost_user_set_mem_table(&vu, &mem), 0);
	assert_int_equal(vhost_user_set_vring_addr(&vu, 1, (void *)0x1000, (void *)0x2000,
						   (void *)0x3000),
			 0);
	assert_int_equal(vhost_user_set_vring_kick(&vu, 1, kick), 0);
	assert_int_equal(vhost_user_set_vring_call(&vu, 1, -1), 0);
	assert_int_equal(vhost_user_get_vring_base(&vu, 1, &base), 0);
	assert_int_equal(base, 77);
	finish(&b);
	assert_true(b.ok);

	/* What the backend decoded. */
	{
		const struct msg *f = &b.seen[5], *mt = &b.seen[6], *a = &b.seen[7];
		const struct msg *k = &b.seen[8], *c = &b.seen[9];

		assert_int_equal(f->hdr.request, VHOST_USER_SET_FEATURES);
		assert_int_equal(f->p.u64, (1ull << 32) | (1ull << VHOST_USER_F_PROTOCOL_FEATURES));
		assert_int_equal(mt->hdr.request, VHOST_USER_SET_MEM_TABLE);
		assert_int_equal(mt->hdr.size, 8 + 2 * sizeof(struct vhost_user_region));
		assert_int_equal(mt->p.mem.nregions, 2);
		assert_int_equal(mt->nr_fds, 2);
		assert_int_equal(mt->p.mem.regions[1].guest_phys_addr, 1ull << 32);
		assert_int_equal(mt->p.mem.regions[1].memory_size, 1 << 20);
		assert_int_equal(mt->p.mem.regions[1].userspace_addr,
				 (uint64_t)(uintptr_t)mem.regions[1].hva);
		assert_int_equal(mt->p.mem.regions[1].mmap_offset, 0);
		assert_int_equal(a->hdr.size, sizeof(struct vhost_user_vring_addr));
		assert_int_equal(a->p.addr.index, 1);
		assert_int_equal(a->p.addr.desc, 0x1000);
		assert_int_equal(a->p.addr.avail, 0x2000);
		assert_int_equal(a->p.addr.used, 0x3000);
		assert_int_equal(k->p.u64, 1);
		assert_int_equal(c->p.u64, 1 | VHOST_USER_VRING_NOFD);
	}
	/* The backend read the kick eventfd's count: the same eventfd. */
	assert_int_equal(b.kick_value, 7);
	vhost_user_close(&vu);
	close(kick);
	guest_mem_unmap(&mem);
}

/* Private memory cannot be handed to a backend. */
static void test_private_memory_refused(void **state)
{
	struct guest_region layout[] = {{.gpa = 0, .size = 1 << 20}};
	struct guest_mem mem;
	struct vhost_user vu = {.fd = -1, .name = "t"};
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	vu.fd = sv[0];
	vu.timeout_ms = 100;
	assert_int_equal(guest_mem_map(&mem, layout, 1), 0);
	assert_false(mem.shared);
	assert_int_equal(vhost_user_set_mem_table(&vu, &mem), -EINVAL);
	vhost_user_close(&vu);
	close(sv[1]);
	guest_mem_unmap(&mem);
}

/* ---- Backends that misbehave ---- */

static void script_dies_after_owner(struct backend *b)
{
	struct msg m;

	if (next(b, VHOST_USER_SET_OWNER, &m))
		b->ok = true;
	close(b->fd);
	b->fd = -1;
}

static void test_backend_dies(void **state)
{
	struct vhost_user vu;
	struct backend b;
	int err;

	start(&b, &vu, script_dies_after_owner);
	err = vhost_user_open(&vu, vu.fd, "test-fs");
	finish(&b);
	assert_true(b.ok);
	/* The GET_FEATURES went out (or not) and its reply never came: EOF. */
	assert_int_equal(err, -EPIPE);
	assert_true(vu.broken);
	/* Writing to the closed socket again: EPIPE, no SIGPIPE (the test would die of it). */
	vu.broken = false;
	assert_int_equal(vhost_user_set_features(&vu, 0), -EPIPE);
	assert_int_equal(vhost_user_set_vring_num(&vu, 0, 8), -EPIPE);
	vhost_user_close(&vu);
}

/* Replies to GET_FEATURES with the wrong request code. */
static void script_wrong_request(struct backend *b)
{
	struct msg m;

	if (next(b, VHOST_USER_SET_OWNER, &m) && next(b, VHOST_USER_GET_FEATURES, &m)) {
		reply_u64(b, VHOST_USER_GET_PROTOCOL_FEATURES, 0);
		b->ok = true;
	}
}

/* A reply of the wrong size. */
static void script_wrong_size(struct backend *b)
{
	struct msg m;
	uint32_t small = 1;

	if (next(b, VHOST_USER_SET_OWNER, &m) && next(b, VHOST_USER_GET_FEATURES, &m)) {
		reply(b, VHOST_USER_GET_FEATURES, &small, sizeof(small));
		b->ok = true;
	}
}

/* A reply without the REPLY flag, and a version 2. */
static void script_bad_flags(struct backend *b)
{
	struct msg m;
	struct {
		struct vhost_user_header hdr;
		uint64_t v;
	} __attribute__((packed)) r = {{VHOST_USER_GET_FEATURES, 2, 8}, 0};

	if (next(b, VHOST_USER_SET_OWNER, &m) && next(b, VHOST_USER_GET_FEATURES, &m)) {
		assert_int_equal(write(b->fd, &r, sizeof(r)), sizeof(r));
		b->ok = true;
	}
}

/* Half a header, then the socket closes. */
static void script_half_header(struct backend *b)
{
	struct msg m;
	uint32_t half[2] = {VHOST_USER_GET_FEATURES, VHOST_USER_VERSION | VHOST_USER_REPLY_FLAG};

	if (next(b, VHOST_USER_SET_OWNER, &m) && next(b, VHOST_USER_GET_FEATURES, &m)) {
		assert_int_equal(write(b->fd, half, sizeof(half)), sizeof(half));
		b->ok = true;
	}
	close(b->fd);
	b->fd = -1;
}

static void expect_open_fails(void (*script)(struct backend *), int err)
{
	struct vhost_user vu;
	struct backend b;

	start(&b, &vu, script);
	assert_int_equal(vhost_user_open(&vu, vu.fd, "test-fs"), err);
	assert_true(vu.broken);
	/* Nothing more is sent on a broken connection. */
	assert_int_equal(vhost_user_set_features(&vu, 0), -EPIPE);
	finish(&b);
	assert_true(b.ok);
	vhost_user_close(&vu);
}

static void test_garbage_replies(void **state)
{
	expect_open_fails(script_wrong_request, -EPROTO);
	expect_open_fails(script_wrong_size, -EPROTO);
	expect_open_fails(script_bad_flags, -EPROTO);
	expect_open_fails(script_half_header, -EPIPE);
}

/* A backend that reads and never answers: the call gives up after the timeout. */
static void script_silent(struct backend *b)
{
	struct msg m;

	b->ok = next(b, VHOST_USER_GET_FEATURES, &m);
	/* Wait for the frontend to give up (its socket closes). */
	while (recv_msg(b->fd, &m))
		;
}

static void test_silent_backend(void **state)
{
	struct vhost_user vu = {.name = "t"};
	struct backend b;
	uint64_t features;

	start(&b, &vu, script_silent);
	vu.timeout_ms = 100;
	assert_int_equal(vhost_user_call(&vu, VHOST_USER_GET_FEATURES, NULL, 0, NULL, 0, &features,
					 sizeof(features)),
			 -ETIMEDOUT);
	assert_true(vu.broken);
	vhost_user_close(&vu);
	finish(&b);
	assert_true(b.ok);
}

/* With REPLY_ACK, a non-zero ack is the backend's refusal: -EIO, the connection stays usable. */
static void script_refuses(struct backend *b)
{
	struct msg m;

	if (!serve_open(b, BACKEND_FEATURES) || !next(b, VHOST_USER_SET_VRING_NUM, &m))
		return;
	reply_u64(b, VHOST_USER_SET_VRING_NUM, 1);
	if (!next(b, VHOST_USER_SET_VRING_NUM, &m))
		return;
	reply_u64(b, VHOST_USER_SET_VRING_NUM, 0);
	b->ok = m.p.state.index == 1 && m.p.state.num == 256;
}

static void test_refusal(void **state)
{
	struct vhost_user vu;
	struct backend b;

	start(&b, &vu, script_refuses);
	assert_int_equal(vhost_user_open(&vu, vu.fd, "test-fs"), 0);
	assert_int_equal(vhost_user_set_vring_num(&vu, 1, 4096), -EIO);
	assert_false(vu.broken);
	assert_int_equal(vhost_user_set_vring_num(&vu, 1, 256), 0);
	finish(&b);
	assert_true(b.ok);
	vhost_user_close(&vu);
}

/* Without VHOST_USER_F_PROTOCOL_FEATURES: no protocol messages, no acks, no ENABLE. */
static void script_plain(struct backend *b)
{
	struct msg m;

	if (!serve_open(b, 1ull << 32) || !next(b, VHOST_USER_SET_FEATURES, &m) ||
	    (m.hdr.flags & VHOST_USER_NEED_REPLY_FLAG) || m.p.u64 != (1ull << 32))
		return;
	b->ok = next(b, VHOST_USER_SET_VRING_BASE, &m) && m.p.state.num == 5;
}

static void test_without_protocol_features(void **state)
{
	struct vhost_user vu;
	struct backend b;

	start(&b, &vu, script_plain);
	assert_int_equal(vhost_user_open(&vu, vu.fd, "test-fs"), 0);
	assert_int_equal(vu.protocol_features, 0);
	assert_int_equal(vhost_user_set_features(&vu, 1ull << 32), 0);
	assert_int_equal(vhost_user_set_vring_enable(&vu, 0, true), 0); /* not sent */
	assert_int_equal(vhost_user_set_vring_base(&vu, 0, 5), 0);
	finish(&b);
	assert_true(b.ok);
	vhost_user_close(&vu);
}

static void test_connect_missing_socket(void **state)
{
	assert_int_equal(vhost_user_connect("/nonexistent/skiff-test.sock"), -ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_session),
	    cmocka_unit_test(test_private_memory_refused),
	    cmocka_unit_test(test_backend_dies),
	    cmocka_unit_test(test_garbage_replies),
	    cmocka_unit_test(test_silent_backend),
	    cmocka_unit_test(test_refusal),
	    cmocka_unit_test(test_without_protocol_features),
	    cmocka_unit_test(test_connect_missing_socket),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
