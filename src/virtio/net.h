/* virtio-net (virtio 1.x 5.1) over a Linux tap device: one RX and one TX queue, the MAC address,
 * link status, and checksum/TSO offloads offered only as far as the tap accepts them
 * (TUNSETOFFLOAD). Neither a full tap nor a full ring loses or stalls traffic, and the worker
 * never spins: with no RX buffers it stops reading the tap until the driver adds some. */
#ifndef SKIFF_VIRTIO_NET_H
#define SKIFF_VIRTIO_NET_H

#include "config/vm_config.h"
#include "virtio/device.h"

/* Opens the tap named in cfg (creating it when the caller may). Returns 0 with *out set, or
 * -errno after one logged line. */
int virtio_net_create(const struct net_config *cfg, struct virtio_device **out);

#endif
