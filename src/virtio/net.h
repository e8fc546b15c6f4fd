/* virtio-net (virtio 1.x 5.1) over a Linux tap device: one RX and one TX queue (or, with
 * queues=N, N pairs over a multi_queue tap: VIRTIO_NET_F_MQ), the MAC address,
 * link status, merged RX buffers, and checksum/TSO offloads offered only as far as the tap
 * accepts them (TUNSETOFFLOAD). Neither a full tap nor a full ring loses or stalls traffic, and
 * the worker never spins: with no RX buffers it stops reading the tap until the driver adds some,
 * and with a full tap it waits for the tap to become writable. */
#ifndef SKIFF_VIRTIO_NET_H
#define SKIFF_VIRTIO_NET_H

#include "config/vm_config.h"
#include "virtio/device.h"

#include <stdbool.h>
#include <stdint.h>

/* Opens the tap named in cfg (creating it when the caller may). Returns 0 with *out set, or
 * -errno after one logged line. */
int virtio_net_create(const struct net_config *cfg, struct virtio_device **out);

/* What the device moves packets through. A tap is one; unit tests use a SOCK_SEQPACKET
 * socketpair. `fd` is nonblocking, passes one packet per readv()/writev(), each starting with the
 * 12-byte struct virtio_net_hdr_v1, and belongs to the device once it is created (destroy closes
 * it; on failure the caller keeps it). set_offload(fd, TUN_F_* flags) says which partially
 * checksummed / GSO packets the backend may hand the device: 0 or -errno when it does not support
 * that set. */
struct virtio_net_backend {
	int fd;
	int (*set_offload)(int fd, unsigned tun_flags);
	/* With cfg->num_queues = N > 1: the fds of pairs 1..N-1 (queues of the same multi_queue
	 * tap, same rules as fd). set_queue(fd, attach) attaches a pair's fd to the backend or
	 * detaches it (TUNSETQUEUE), 0 or -errno; NULL: the backend has no such notion. */
	int queue_fds[NET_MAX_QUEUE_PAIRS - 1];
	int (*set_queue)(int fd, bool attach);
};

/* virtio_net_create() on a backend other than a tap; cfg->tap only names the device. */
int virtio_net_create_on(const struct net_config *cfg, const struct virtio_net_backend *be,
			 struct virtio_device **out);

/* Replaces the buckets named in rx_which / tx_which (RATE_LIMITER_BANDWIDTH, RATE_LIMITER_OPS
 * of virtio/rate_limiter.h) of the RX and TX limiters by those of rx / tx (NULL with 0: no
 * change), on the device's worker (PATCH /network-interfaces/{id}). 0, or -errno with the reason
 * as the calling thread's last error. Any thread. */
int virtio_net_set_rate_limiters(struct virtio_device *dev, const struct rate_limiter_config *rx,
				 unsigned rx_which, const struct rate_limiter_config *tx,
				 unsigned tx_which);

/* Per queue pair: what went through its RX and its TX queue. */
struct virtio_net_pair_stats {
	uint64_t rx_packets, rx_bytes, tx_packets, tx_bytes;
};

/* Traffic counters (bytes are frame bytes, without the virtio-net header). */
struct virtio_net_stats {
	uint64_t rx_packets, rx_bytes; /* given to the guest */
	uint64_t rx_dropped; /* read from the backend, but no guest buffer could take it */
	uint64_t rx_errors;  /* failed reads from the backend, runt packets */
	uint64_t tx_packets, tx_bytes; /* taken by the backend */
	uint64_t tx_dropped;	       /* sent by the guest while the backend was gone */
	uint64_t tx_errors;	       /* refused by the backend (e.g. a malformed GSO header) */
	unsigned nr_pairs;	       /* queue pairs the device has; pairs[0..nr_pairs) */
	struct virtio_net_pair_stats pairs[NET_MAX_QUEUE_PAIRS];
};

/* A snapshot of the counters; may be called from any thread. */
void virtio_net_get_stats(struct virtio_device *dev, struct virtio_net_stats *out);

/* Whether dev is skiff's own virtio-net with more than one queue pair (whose pairs in use the
 * saved device state does not carry: such an interface cannot be snapshotted). */
bool virtio_net_is_multiqueue(const struct virtio_device *dev);

#endif
