/* virtio-vsock (virtio 1.2, 5.10) with Firecracker's hybrid host side: the guest's stream
 * sockets become connections on host unix sockets.
 *
 *   - host-initiated: a program connects to uds_path and writes "CONNECT <port>\n"; the device
 *     sends the guest a REQUEST to that port and, once the guest answers RESPONSE, writes
 *     "OK <host_port>\n" and relays both ways; a guest RST (nobody listens), or no answer in 2 s,
 *     closes the program's connection;
 *   - guest-initiated: a connection to CID 2, port P, is relayed to the unix socket
 *     "<uds_path>_P"; nobody listening there resets the guest's connection.
 *
 * Flow control is the spec's credit: the device never buffers more than buf_alloc bytes per
 * connection (a guest sending beyond its credit gets that connection reset, with a log line), and
 * reads a host socket only as far as the guest's credit and RX buffers allow. The number of
 * connections is capped. A guest that breaks the packet rules (short headers, lengths beyond the
 * chain, huge lengths, device-writable TX buffers) gets the device marked DEVICE_NEEDS_RESET.
 *
 * Everything runs on the device's worker thread: the listening socket and every connection's
 * socket are watched by its event loop. */
#ifndef SKIFF_VIRTIO_VSOCK_H
#define SKIFF_VIRTIO_VSOCK_H

#include "config/vm_config.h"
#include "virtio/device.h"

#include <stdint.h>

/* 5.10.6 Device operation: the packet header, little-endian. */
struct virtio_vsock_hdr {
	uint64_t src_cid;
	uint64_t dst_cid;
	uint32_t src_port;
	uint32_t dst_port;
	uint32_t len;
	uint16_t type;
	uint16_t op;
	uint32_t flags;
	uint32_t buf_alloc;
	uint32_t fwd_cnt;
} __attribute__((packed));

#define VIRTIO_VSOCK_HDR_SIZE 44
_Static_assert(sizeof(struct virtio_vsock_hdr) == VIRTIO_VSOCK_HDR_SIZE, "vsock header");

#define VSOCK_CID_HOST	  2
#define VSOCK_TYPE_STREAM 1

enum virtio_vsock_op {
	VSOCK_OP_INVALID = 0,
	VSOCK_OP_REQUEST = 1,
	VSOCK_OP_RESPONSE = 2,
	VSOCK_OP_RST = 3,
	VSOCK_OP_SHUTDOWN = 4,
	VSOCK_OP_RW = 5,
	VSOCK_OP_CREDIT_UPDATE = 6,
	VSOCK_OP_CREDIT_REQUEST = 7,
};

#define VSOCK_SHUTDOWN_RCV  1 /* the sender will receive no more */
#define VSOCK_SHUTDOWN_SEND 2 /* the sender will send no more */

#define VSOCK_QUEUE_RX	  0
#define VSOCK_QUEUE_TX	  1
#define VSOCK_QUEUE_EVENT 2

/* What the device keeps per connection and offers as buf_alloc; the most connections at once;
 * the largest payload one packet may carry. */
#define VSOCK_CONN_BUF_ALLOC (256 * 1024)
#define VSOCK_MAX_CONNS	     128
#define VSOCK_MAX_PKT_LEN    (64 * 1024)

/* Binds and listens on cfg->uds_path (a stale socket file there is replaced; a live one is
 * refused). Returns 0 with *out set, or -errno after one logged line. */
int virtio_vsock_create(const struct vsock_config *cfg, struct virtio_device **out);

struct virtio_vsock_stats {
	uint64_t conns_host;  /* host-initiated connections the guest accepted */
	uint64_t conns_guest; /* guest-initiated connections relayed */
	uint64_t refused;     /* connections refused either way */
	uint64_t resets;      /* RSTs sent to the guest */
	uint64_t credit_violations;
	uint64_t rx_bytes, tx_bytes; /* payload to and from the guest */
	uint64_t bad_packets;	     /* dropped: wrong CIDs, unknown type */
	uint64_t conns_open;
};

/* A snapshot of the counters (any thread). */
void virtio_vsock_get_stats(struct virtio_device *dev, struct virtio_vsock_stats *out);

#endif
