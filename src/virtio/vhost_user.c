#include "virtio/vhost_user.h"
#include "base/log.h"

#include <errno.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* What skiff asks of the protocol features. */
#define WANTED_PROTOCOL_FEATURES                                                                   \
	((1ull << VHOST_USER_PROTOCOL_F_MQ) | (1ull << VHOST_USER_PROTOCOL_F_REPLY_ACK))

static const char *request_name(uint32_t request)
{
	switch (request) {
	case VHOST_USER_GET_FEATURES:
		return "GET_FEATURES";
	case VHOST_USER_SET_FEATURES:
		return "SET_FEATURES";
	case VHOST_USER_SET_OWNER:
		return "SET_OWNER";
	case VHOST_USER_RESET_OWNER:
		return "RESET_OWNER";
	case VHOST_USER_SET_MEM_TABLE:
		return "SET_MEM_TABLE";
	case VHOST_USER_SET_VRING_NUM:
		return "SET_VRING_NUM";
	case VHOST_USER_SET_VRING_ADDR:
		return "SET_VRING_ADDR";
	case VHOST_USER_SET_VRING_BASE:
		return "SET_VRING_BASE";
	case VHOST_USER_GET_VRING_BASE:
		return "GET_VRING_BASE";
	case VHOST_USER_SET_VRING_KICK:
		return "SET_VRING_KICK";
	case VHOST_USER_SET_VRING_CALL:
		return "SET_VRING_CALL";
	case VHOST_USER_GET_PROTOCOL_FEATURES:
		return "GET_PROTOCOL_FEATURES";
	case VHOST_USER_SET_PROTOCOL_FEATURES:
		return "SET_PROTOCOL_FEATURES";
	case VHOST_USER_GET_QUEUE_NUM:
		return "GET_QUEUE_NUM";
	case VHOST_USER_SET_VRING_ENABLE:
		return "SET_VRING_ENABLE";
	}
	return "request";
}

/* Marks the connection broken and sets the reason: "<name>: vhost-user <REQ>: <why>". */
static int fail(struct vhost_user *vu, int err, uint32_t request, const char *why)
{
	vu->broken = true;
	return log_set_error(err, "%s: vhost-user %s: %s", vu->name, request_name(request), why);
}

int vhost_user_connect(const char *path)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	int fd, err;

	if (strlen(path) >= sizeof(addr.sun_path))
		return log_set_error(-ENAMETOOLONG, "vhost-user socket %s: path too long", path);
	strcpy(addr.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return log_set_error(-errno, "vhost-user socket: %s", strerror(errno));
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		err = -errno;
		close(fd);
		return log_set_error(err, "vhost-user socket %s: %s", path, strerror(-err));
	}
	return fd;
}

static int send_message(struct vhost_user *vu, const struct vhost_user_header *hdr,
			const void *payload, const int *fds, int nr_fds)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * VHOST_USER_MAX_REGIONS)];
		struct cmsghdr align;
	} control;
	struct iovec iov[2] = {
	    {.iov_base = (void *)hdr, .iov_len = sizeof(*hdr)},
	    {.iov_base = (void *)payload, .iov_len = hdr->size},
	};
	struct msghdr msg = {.msg_iov = iov, .msg_iovlen = hdr->size ? 2 : 1};
	size_t total = sizeof(*hdr) + hdr->size;
	ssize_t n;

	if (nr_fds > VHOST_USER_MAX_REGIONS)
		return fail(vu, -EINVAL, hdr->request, "too many file descriptors");
	if (nr_fds > 0) {
		struct cmsghdr *cmsg;

		memset(&control, 0, sizeof(control));
		msg.msg_control = control.buf;
		msg.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nr_fds);
		cmsg = CMSG_FIRSTHDR(&msg);
		cmsg->cmsg_level = SOL_SOCKET;
		cmsg->cmsg_type = SCM_RIGHTS;
		cmsg->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nr_fds);
		memcpy(CMSG_DATA(cmsg), fds, sizeof(int) * (size_t)nr_fds);
	}
	do
		n = sendmsg(vu->fd, &msg, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		char why[96];

		snprintf(why, sizeof(why), "the backend is gone (%s)", strerror(errno));
		return fail(vu, -EPIPE, hdr->request, why);
	}
	/* A UNIX stream socket takes a message this small whole, or not at all when it blocks;
	 * anything else is a backend that stopped reading. */
	if ((size_t)n != total)
		return fail(vu, -EPIPE, hdr->request, "short write: the backend stopped reading");
	return 0;
}

/* Reads exactly `len` bytes within the timeout; fds that come along are closed. */
static int read_exact(struct vhost_user *vu, uint32_t request, void *buf, size_t len)
{
	size_t done = 0;

	while (done < len) {
		struct pollfd pfd = {.fd = vu->fd, .events = POLLIN};
		union {
			char buf[CMSG_SPACE(sizeof(int) * VHOST_USER_MAX_REGIONS)];
			struct cmsghdr align;
		} control;
		struct iovec iov = {.iov_base = (char *)buf + done, .iov_len = len - done};
		struct msghdr msg = {.msg_iov = &iov,
				     .msg_iovlen = 1,
				     .msg_control = control.buf,
				     .msg_controllen = sizeof(control.buf)};
		int r = poll(&pfd, 1, vu->timeout_ms);
		ssize_t n;

		if (r < 0 && errno == EINTR)
			continue;
		if (r == 0)
			return fail(vu, -ETIMEDOUT, request, "no reply from the backend");
		if (r < 0)
			return fail(vu, -errno, request, strerror(errno));
		n = recvmsg(vu->fd, &msg, MSG_CMSG_CLOEXEC);
		if (n < 0 && errno == EINTR)
			continue;
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); n >= 0 && c; c = CMSG_NXTHDR(&msg, c))
			if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
				for (size_t i = 0; i < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
				     i++) {
					int fd;

					memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
					close(fd);
				}
		if (n == 0)
			return fail(vu, -EPIPE, request, "the backend closed the connection");
		if (n < 0)
			return fail(vu, -EPIPE, request, strerror(errno));
		done += (size_t)n;
	}
	return 0;
}

/* The reply to `request`, whose payload must be exactly `size` bytes. */
static int read_reply(struct vhost_user *vu, uint32_t request, void *payload, uint32_t size)
{
	struct vhost_user_header hdr;
	char why[128];
	int err = read_exact(vu, request, &hdr, sizeof(hdr));

	if (err)
		return err;
	if (hdr.request != request || (hdr.flags & VHOST_USER_VERSION_MASK) != VHOST_USER_VERSION ||
	    !(hdr.flags & VHOST_USER_REPLY_FLAG) || hdr.size != size) {
		snprintf(why, sizeof(why),
			 "malformed reply (request %u, flags %#x, %u bytes; expected request %u, "
			 "a version 1 reply of %u bytes)",
			 hdr.request, hdr.flags, hdr.size, request, size);
		return fail(vu, -EPROTO, request, why);
	}
	return read_exact(vu, request, payload, size);
}

int vhost_user_call(struct vhost_user *vu, uint32_t request, const void *payload, uint32_t size,
		    const int *fds, int nr_fds, void *reply, uint32_t reply_size)
{
	bool ack = !reply && (vu->protocol_features & (1ull << VHOST_USER_PROTOCOL_F_REPLY_ACK));
	struct vhost_user_header hdr = {
	    .request = request,
	    .flags = VHOST_USER_VERSION | (ack ? VHOST_USER_NEED_REPLY_FLAG : 0),
	    .size = size,
	};
	uint64_t status;
	int err;

	if (vu->broken || vu->fd < 0)
		return log_set_error(-EPIPE, "%s: the vhost-user backend is gone", vu->name);
	if ((err = send_message(vu, &hdr, payload, fds, nr_fds)))
		return err;
	if (reply)
		return read_reply(vu, request, reply, reply_size);
	if (!ack)
		return 0;
	if ((err = read_reply(vu, request, &status, sizeof(status))))
		return err;
	if (status != 0) {
		/* A refusal is the backend's answer, not a broken connection. */
		return log_set_error(-EIO, "%s: vhost-user %s: the backend refused it (%llu)",
				     vu->name, request_name(request), (unsigned long long)status);
	}
	return 0;
}

static int get_u64(struct vhost_user *vu, uint32_t request, uint64_t *out)
{
	return vhost_user_call(vu, request, NULL, 0, NULL, 0, out, sizeof(*out));
}

static int set_u64(struct vhost_user *vu, uint32_t request, uint64_t value)
{
	return vhost_user_call(vu, request, &value, sizeof(value), NULL, 0, NULL, 0);
}

static int set_state(struct vhost_user *vu, uint32_t request, uint32_t index, uint32_t num)
{
	struct vhost_user_vring_state s = {.index = index, .num = num};

	return vhost_user_call(vu, request, &s, sizeof(s), NULL, 0, NULL, 0);
}

int vhost_user_open(struct vhost_user *vu, int fd, const char *name)
{
	uint64_t proto = 0, queues = 0;
	int err;

	*vu = (struct vhost_user){.fd = fd, .timeout_ms = VHOST_USER_REPLY_TIMEOUT_MS};
	snprintf(vu->name, sizeof(vu->name), "%s", name);
	if ((err = vhost_user_call(vu, VHOST_USER_SET_OWNER, NULL, 0, NULL, 0, NULL, 0)) ||
	    (err = get_u64(vu, VHOST_USER_GET_FEATURES, &vu->features)))
		return err;
	if (!(vu->features & (1ull << VHOST_USER_F_PROTOCOL_FEATURES)))
		return 0;
	if ((err = get_u64(vu, VHOST_USER_GET_PROTOCOL_FEATURES, &proto)) ||
	    (err = set_u64(vu, VHOST_USER_SET_PROTOCOL_FEATURES, proto & WANTED_PROTOCOL_FEATURES)))
		return err;
	vu->protocol_features = proto & WANTED_PROTOCOL_FEATURES;
	if (vu->protocol_features & (1ull << VHOST_USER_PROTOCOL_F_MQ)) {
		if ((err = get_u64(vu, VHOST_USER_GET_QUEUE_NUM, &queues)))
			return err;
		vu->queue_num = queues > UINT32_MAX ? UINT32_MAX : (uint32_t)queues;
	}
	return 0;
}

void vhost_user_close(struct vhost_user *vu)
{
	if (vu->fd >= 0)
		close(vu->fd);
	vu->fd = -1;
	vu->broken = true;
}

int vhost_user_set_features(struct vhost_user *vu, uint64_t features)
{
	if (vu->features & (1ull << VHOST_USER_F_PROTOCOL_FEATURES))
		features |= 1ull << VHOST_USER_F_PROTOCOL_FEATURES;
	return set_u64(vu, VHOST_USER_SET_FEATURES, features);
}

int vhost_user_set_mem_table(struct vhost_user *vu, const struct guest_mem *mem)
{
	struct vhost_user_mem_table t = {0};
	int fds[VHOST_USER_MAX_REGIONS];

	if (!mem->shared || mem->nr_regions > VHOST_USER_MAX_REGIONS)
		return fail(vu, -EINVAL, VHOST_USER_SET_MEM_TABLE,
			    "guest memory is not shared (memfd) memory");
	for (int i = 0; i < mem->nr_regions; i++) {
		const struct guest_region *r = &mem->regions[i];

		t.regions[i] = (struct vhost_user_region){
		    .guest_phys_addr = r->gpa,
		    .memory_size = r->size,
		    .userspace_addr = (uint64_t)(uintptr_t)r->hva,
		    .mmap_offset = 0,
		};
		fds[i] = mem->fds[i];
	}
	t.nregions = (uint32_t)mem->nr_regions;
	/* The payload is the regions the message has, not the whole array. */
	return vhost_user_call(vu, VHOST_USER_SET_MEM_TABLE, &t,
			       (uint32_t)(offsetof(struct vhost_user_mem_table, regions) +
					  sizeof(t.regions[0]) * (size_t)mem->nr_regions),
			       fds, mem->nr_regions, NULL, 0);
}

int vhost_user_set_vring_num(struct vhost_user *vu, uint32_t index, uint32_t num)
{
	return set_state(vu, VHOST_USER_SET_VRING_NUM, index, num);
}

int vhost_user_set_vring_addr(struct vhost_user *vu, uint32_t index, const void *desc,
			      const void *avail, const void *used)
{
	struct vhost_user_vring_addr a = {
	    .index = index,
	    .desc = (uint64_t)(uintptr_t)desc,
	    .used = (uint64_t)(uintptr_t)used,
	    .avail = (uint64_t)(uintptr_t)avail,
	};

	return vhost_user_call(vu, VHOST_USER_SET_VRING_ADDR, &a, sizeof(a), NULL, 0, NULL, 0);
}

int vhost_user_set_vring_base(struct vhost_user *vu, uint32_t index, uint32_t base)
{
	return set_state(vu, VHOST_USER_SET_VRING_BASE, index, base);
}

int vhost_user_get_vring_base(struct vhost_user *vu, uint32_t index, uint32_t *base)
{
	struct vhost_user_vring_state s = {.index = index}, r;
	int err = vhost_user_call(vu, VHOST_USER_GET_VRING_BASE, &s, sizeof(s), NULL, 0, &r,
				  sizeof(r));

	if (err)
		return err;
	if (r.index != index)
		return fail(vu, -EPROTO, VHOST_USER_GET_VRING_BASE,
			    "the reply names another queue");
	*base = r.num;
	return 0;
}

static int set_vring_fd(struct vhost_user *vu, uint32_t request, uint32_t index, int fd)
{
	uint64_t v = (index & 0xff) | (fd < 0 ? VHOST_USER_VRING_NOFD : 0);

	return vhost_user_call(vu, request, &v, sizeof(v), fd < 0 ? NULL : &fd, fd < 0 ? 0 : 1,
			       NULL, 0);
}

int vhost_user_set_vring_kick(struct vhost_user *vu, uint32_t index, int fd)
{
	return set_vring_fd(vu, VHOST_USER_SET_VRING_KICK, index, fd);
}

int vhost_user_set_vring_call(struct vhost_user *vu, uint32_t index, int fd)
{
	return set_vring_fd(vu, VHOST_USER_SET_VRING_CALL, index, fd);
}

int vhost_user_set_vring_enable(struct vhost_user *vu, uint32_t index, bool enable)
{
	if (!(vu->features & (1ull << VHOST_USER_F_PROTOCOL_FEATURES)))
		return 0;
	return set_state(vu, VHOST_USER_SET_VRING_ENABLE, index, enable);
}
