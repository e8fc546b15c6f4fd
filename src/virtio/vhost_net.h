/* virtio-net through the kernel's vhost-net (/dev/vhost-net): --net tap=NAME,vhost=on. skiff
 * offers the device (MAC, link status, the tap's offloads, merged RX buffers) and negotiates its
 * features, then hands the rings, guest memory and the tap to the kernel, whose vhost worker
 * moves the packets between the rings and the tap without skiff.
 *
 * The driver's kicks reach the kernel straight from KVM: the queues' ioeventfds are the kick
 * eventfds vhost reads (ops->backend_queues). Its used-buffer notifications go straight to the
 * guest's interrupt where the transport has an eventfd for that (dev->direct_irq_fd: virtio-pci's
 * MSI-X vector while it is live, virtio-mmio's line), so that no thread of skiff's wakes per
 * interrupt; elsewhere (MSI-X off, no KVM) they come back on one call eventfd per queue that the
 * device's worker reads, raising the interrupt through the core. When the answer changes
 * (ops->direct_irq_changed) the worker gives the kernel the new eventfd. A queue the kernel stops
 * on a driver's mistake (its error eventfd) marks the device DEVICE_NEEDS_RESET.
 *
 * A reset stops the rings (VHOST_NET_SET_BACKEND -1, VHOST_GET_VRING_BASE); a snapshot's quiesce
 * stops them, records where the kernel got to in the rings (the core saves it) and starts them
 * again; activation after a restore starts them from the saved indices. Packets are not counted
 * by skiff (its metrics show none for such an interface); rate limiters and dirty page tracking
 * are refused by the configuration (config/net.c).
 *
 * Threads: create on the thread building the VM; the ops on the device's worker, as for every
 * device. Errors: -errno after one logged line. */
#ifndef SKIFF_VIRTIO_VHOST_NET_H
#define SKIFF_VIRTIO_VHOST_NET_H

#include "config/vm_config.h"
#include "virtio/device.h"

#include <stdbool.h>

/* Opens /dev/vhost-net (a missing one is a clear error: the vhost_net module), takes ownership of
 * it, checks what it supports and makes the device on tap_fd (an open tap, IFF_VNET_HDR with a
 * 12-byte header; the device owns it on success). cfg->tap names the device. */
int vhost_net_create(const struct net_config *cfg, int tap_fd, struct virtio_device **out);

/* Whether dev is a vhost-net device. */
bool vhost_net_is(const struct virtio_device *dev);

#endif
