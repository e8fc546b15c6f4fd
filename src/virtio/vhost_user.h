/* The frontend side of the vhost-user protocol (QEMU's docs/interop/vhost-user.rst): skiff hands
 * a backend process (virtiofsd) guest memory and a device's virtqueues over a UNIX socket, and
 * the backend processes the rings itself: the driver's kicks reach it through the queue's
 * eventfd (KVM's ioeventfd), its used-buffer notifications come back through a call eventfd.
 *
 * A message is a 12-byte header (request, flags: version 1, REPLY, NEED_REPLY; payload size) and
 * its payload; file descriptors (memory regions, eventfds) travel as SCM_RIGHTS. Only the
 * requests a device with split rings needs are spoken; of the protocol features, REPLY_ACK (so a
 * backend's refusal of a request is seen) and MQ (to read the backend's queue count).
 *
 * Everything the backend sends is untrusted: a reply with the wrong request code, flags or size,
 * a short read, a silent backend (VHOST_USER_REPLY_TIMEOUT_MS) or a closed socket fails the
 * call with -EPROTO, -ETIMEDOUT or -EPIPE and one line as the thread's last error
 * (log_set_error). A send never raises SIGPIPE (MSG_NOSIGNAL). After a failure the connection
 * is `broken` and every later call fails with -EPIPE at once: the caller decides what the
 * device does without its backend.
 *
 * Threads: one connection is used by one thread at a time (the device's worker, or the thread
 * creating the device). */
#ifndef SKIFF_VIRTIO_VHOST_USER_H
#define SKIFF_VIRTIO_VHOST_USER_H

#include "base/guest_mem.h"

#include <stdbool.h>
#include <stdint.h>

/* Requests (frontend to backend). */
enum vhost_user_request {
	VHOST_USER_GET_FEATURES = 1,
	VHOST_USER_SET_FEATURES = 2,
	VHOST_USER_SET_OWNER = 3,
	VHOST_USER_RESET_OWNER = 4,
	VHOST_USER_SET_MEM_TABLE = 5,
	VHOST_USER_SET_VRING_NUM = 8,
	VHOST_USER_SET_VRING_ADDR = 9,
	VHOST_USER_SET_VRING_BASE = 10,
	VHOST_USER_GET_VRING_BASE = 11,
	VHOST_USER_SET_VRING_KICK = 12,
	VHOST_USER_SET_VRING_CALL = 13,
	VHOST_USER_GET_PROTOCOL_FEATURES = 15,
	VHOST_USER_SET_PROTOCOL_FEATURES = 16,
	VHOST_USER_GET_QUEUE_NUM = 17,
	VHOST_USER_SET_VRING_ENABLE = 18,
};

#define VHOST_USER_VERSION	   0x1
#define VHOST_USER_VERSION_MASK	   0x3
#define VHOST_USER_REPLY_FLAG	   (1u << 2)
#define VHOST_USER_NEED_REPLY_FLAG (1u << 3)

/* GET_FEATURES' bit saying the backend speaks the protocol features. */
#define VHOST_USER_F_PROTOCOL_FEATURES 30

#define VHOST_USER_PROTOCOL_F_MQ	0
#define VHOST_USER_PROTOCOL_F_REPLY_ACK 3

#define VHOST_USER_MAX_REGIONS	    8
#define VHOST_USER_REPLY_TIMEOUT_MS 5000
/* SET_VRING_KICK / SET_VRING_CALL payload: the queue index, and this bit when no fd is sent. */
#define VHOST_USER_VRING_NOFD (1ull << 8)

struct vhost_user_header {
	uint32_t request;
	uint32_t flags;
	uint32_t size; /* payload bytes after the header */
} __attribute__((packed));

struct vhost_user_vring_state {
	uint32_t index;
	uint32_t num;
} __attribute__((packed));

struct vhost_user_vring_addr {
	uint32_t index;
	uint32_t flags;
	uint64_t desc; /* frontend virtual addresses, as SET_MEM_TABLE's userspace_addr name them */
	uint64_t used;
	uint64_t avail;
	uint64_t log;
} __attribute__((packed));

struct vhost_user_region {
	uint64_t guest_phys_addr;
	uint64_t memory_size;
	uint64_t userspace_addr;
	uint64_t mmap_offset;
} __attribute__((packed));

struct vhost_user_mem_table {
	uint32_t nregions;
	uint32_t padding;
	struct vhost_user_region regions[VHOST_USER_MAX_REGIONS];
} __attribute__((packed));

union vhost_user_payload {
	uint64_t u64;
	struct vhost_user_vring_state state;
	struct vhost_user_vring_addr addr;
	struct vhost_user_mem_table mem;
};

struct vhost_user {
	int fd;			    /* the connected socket, -1 when none */
	char name[48];		    /* for messages: "virtio-fs docs" */
	uint64_t features;	    /* what GET_FEATURES offered */
	uint64_t protocol_features; /* negotiated (0 without VHOST_USER_F_PROTOCOL_FEATURES) */
	uint32_t queue_num;	    /* GET_QUEUE_NUM, or 0 when the backend has no MQ */
	int timeout_ms;		    /* how long a reply may take */
	bool broken;
};

/* Connects to the backend's socket at `path`; returns the fd or -errno (reason set). */
int vhost_user_connect(const char *path);

/* Takes `fd` (closed by vhost_user_close) and opens the session: SET_OWNER, GET_FEATURES and,
 * when the backend speaks them, the protocol features (REPLY_ACK and MQ, as far as both have
 * them) and GET_QUEUE_NUM. Returns 0 or -errno (reason set; `vu` still owns fd). */
int vhost_user_open(struct vhost_user *vu, int fd, const char *name);
void vhost_user_close(struct vhost_user *vu);

/* SET_FEATURES: the driver's virtio features; VHOST_USER_F_PROTOCOL_FEATURES is added when it
 * was offered. */
int vhost_user_set_features(struct vhost_user *vu, uint64_t features);
/* SET_MEM_TABLE with one fd per region: guest memory must be shared (guest_mem_map_shared). */
int vhost_user_set_mem_table(struct vhost_user *vu, const struct guest_mem *mem);
int vhost_user_set_vring_num(struct vhost_user *vu, uint32_t index, uint32_t num);
int vhost_user_set_vring_addr(struct vhost_user *vu, uint32_t index, const void *desc,
			      const void *avail, const void *used);
int vhost_user_set_vring_base(struct vhost_user *vu, uint32_t index, uint32_t base);
/* Stops the ring and reads where the backend got to (its next available index). */
int vhost_user_get_vring_base(struct vhost_user *vu, uint32_t index, uint32_t *base);
int vhost_user_set_vring_kick(struct vhost_user *vu, uint32_t index, int fd);
int vhost_user_set_vring_call(struct vhost_user *vu, uint32_t index, int fd);
/* Only when the protocol features were negotiated (else rings start enabled): 0 otherwise. */
int vhost_user_set_vring_enable(struct vhost_user *vu, uint32_t index, bool enable);

/* One message, for the above and the tests: sends `request` with `payload` (`size` bytes) and
 * `fds`, then, when `reply` is not NULL, reads the reply's payload of exactly `reply_size`
 * bytes; with REPLY_ACK negotiated and no reply expected, asks for and checks the ack. */
int vhost_user_call(struct vhost_user *vu, uint32_t request, const void *payload, uint32_t size,
		    const int *fds, int nr_fds, void *reply, uint32_t reply_size);

#endif
