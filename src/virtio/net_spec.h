/* virtio-net as the virtio 1.x specification (5.1) lays it out, shared by skiff's own device
 * (virtio/net.c) and the vhost-net one (virtio/vhost_net.c): the feature bits both offer, the
 * link status bit and the configuration space, and how an interface's configuration fills it.
 * The control queue's are in virtio/net_ctrl.h. */
#ifndef SKIFF_VIRTIO_NET_SPEC_H
#define SKIFF_VIRTIO_NET_SPEC_H

#include <stdint.h>

/* 5.1.3 Feature bits */
#define VIRTIO_NET_F_CSUM	0
#define VIRTIO_NET_F_GUEST_CSUM 1
#define VIRTIO_NET_F_MAC	5
#define VIRTIO_NET_F_GUEST_TSO4 7
#define VIRTIO_NET_F_GUEST_TSO6 8
#define VIRTIO_NET_F_GUEST_ECN	9
#define VIRTIO_NET_F_HOST_TSO4	11
#define VIRTIO_NET_F_HOST_TSO6	12
#define VIRTIO_NET_F_HOST_ECN	13
#define VIRTIO_NET_F_MRG_RXBUF	15
#define VIRTIO_NET_F_STATUS	16
#define VIRTIO_NET_F_MQ		22

#define VIRTIO_NET_S_LINK_UP 1

/* 5.1.4 Device configuration layout (the fields skiff offers) */
struct net_config_space {
	uint8_t mac[6];
	uint16_t status;
	uint16_t max_virtqueue_pairs;
} __attribute__((packed));

struct net_config;

/* The configuration space of the interface `cfg`: its MAC (or a random locally administered
 * unicast one, logged as `name`'s), the link up, one queue pair (the caller sets more). 0, or -errno after a logged
 * line. */
int net_config_space_init(struct net_config_space *cs, const struct net_config *cfg,
			  const char *name);

#endif
