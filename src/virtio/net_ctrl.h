/* virtio-net's control virtqueue (virtio 1.x 5.1.6.5, VIRTIO_NET_F_CTRL_VQ) and the link
 * announcement it acknowledges (VIRTIO_NET_F_GUEST_ANNOUNCE, 5.1.6.5.4): after the VM moved
 * (a snapshot restored, a live migration's destination) the device sets VIRTIO_NET_S_ANNOUNCE in
 * its config status and raises a configuration change; the driver then announces the guest on
 * the network (Linux sends gratuitous ARPs and unsolicited neighbour advertisements) and answers
 * VIRTIO_NET_CTRL_ANNOUNCE_ACK, which clears the bit.
 *
 * Commands served: VIRTIO_NET_CTRL_ANNOUNCE / ANNOUNCE_ACK, and VIRTIO_NET_CTRL_MQ /
 * VQ_PAIRS_SET (5.1.6.5.5, with VIRTIO_NET_F_MQ: a le16 count of pairs, which the device's
 * set_pairs callback takes or refuses). Every other class or command, and a
 * command whose header is short or that carries data it should not, is answered VIRTIO_NET_ERR
 * and the device goes on. A chain with no device-writable byte for the answer, or that breaks
 * the ring's rules, fails the device (DEVICE_NEEDS_RESET): there is no way to answer it.
 *
 * Threads: net_ctrl_process() and net_ctrl_announce() on the device's worker; net_ctrl_status()
 * from any thread (the vCPU reading config space). */
#ifndef SKIFF_VIRTIO_NET_CTRL_H
#define SKIFF_VIRTIO_NET_CTRL_H

#include "virtio/device.h"

#include <stdbool.h>
#include <stdint.h>

#define VIRTIO_NET_F_CTRL_VQ	    17
#define VIRTIO_NET_F_GUEST_ANNOUNCE 21
#define VIRTIO_NET_S_ANNOUNCE	    2

struct net_ctrl {
	struct virtio_device *dev;
	uint16_t queue; /* the control queue's index */
	/* VQ_PAIRS_SET: use `pairs` queue pairs; 0, or -errno to answer VIRTIO_NET_ERR. */
	int (*set_pairs)(void *ctx, uint16_t pairs);
	void *ctx;
	uint16_t announce; /* VIRTIO_NET_S_ANNOUNCE while an announcement is unacknowledged */
	struct virtq_elem elem;
};

void net_ctrl_init(struct net_ctrl *c, struct virtio_device *dev, uint16_t queue,
		   int (*set_pairs)(void *ctx, uint16_t pairs), void *ctx);

/* The control queue moved (its index depends on whether the driver took VIRTIO_NET_F_MQ). */
void net_ctrl_set_queue(struct net_ctrl *c, uint16_t queue);

/* Serves every command waiting on the control queue. */
void net_ctrl_process(struct net_ctrl *c);

/* Asks the driver to announce the guest, when it negotiated VIRTIO_NET_F_GUEST_ANNOUNCE (else
 * nothing). Returns whether it asked. */
bool net_ctrl_announce(struct net_ctrl *c);

/* The status bits the control queue owns (VIRTIO_NET_S_ANNOUNCE or 0), for config space. */
uint16_t net_ctrl_status(const struct net_ctrl *c);

/* A device reset: no announcement pending. */
void net_ctrl_reset(struct net_ctrl *c);

#endif
