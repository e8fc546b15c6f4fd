/* A Linux tap interface as a packet backend for virtio-net: one frame per read()/write(), each
 * preceded by the 12-byte virtio_net_hdr_v1 (IFF_VNET_HDR, TUNSETVNETHDRSZ), nonblocking. The
 * offloads (TUN_F_*) say which partially checksummed or GSO frames the tap may hand us; the
 * kernel takes such frames from us whatever they are set to. */
#ifndef SKIFF_VIRTIO_TAP_H
#define SKIFF_VIRTIO_TAP_H

#include <net/if.h>
#include <stdbool.h>
#include <stdint.h>

#define TAP_VNET_HDR_LEN 12 /* struct virtio_net_hdr_v1: with num_buffers */

/* Attaches to the tap `name` (an existing persistent one, or a new one when the caller has
 * CAP_NET_ADMIN; an empty name lets the kernel choose). On success returns the fd (O_NONBLOCK,
 * O_CLOEXEC) and the interface's name in `actual`; else -errno after one logged line that says
 * what to do. */
int tap_open(const char *name, char actual[IFNAMSIZ]);

/* tap_open() for `n` queues of a multi_queue tap (IFF_MULTI_QUEUE; n = 1 is tap_open()): fds[0..n)
 * on success (0), else -errno after one logged line (a tap made without multi_queue says how to
 * make one) and no fd left open. */
int tap_open_queues(const char *name, unsigned n, int *fds, char actual[IFNAMSIZ]);

/* TUNSETQUEUE: attaches the queue `fd` to its tap again, or detaches it (IFF_DETACH_QUEUE: the
 * kernel steers no packet to it and drops what it held). 0 or -errno. */
int tap_set_queue(int fd, bool attach);

/* TUNSETOFFLOAD: 0 or -errno (-EINVAL for a set this kernel does not know). */
int tap_set_offload(int fd, unsigned tun_flags);

/* The offloads (TUN_F_*) a tap may use towards a guest whose driver negotiated the virtio-net
 * features `guest_features` (a bit per feature), kept consistent with the dependencies
 * TUNSETOFFLOAD enforces (TSO needs CSUM, ECN needs TSO). */
unsigned tap_guest_offloads(uint64_t guest_features);

/* The widest set of offloads a tap accepts (TUN_F_CSUM with TSO4, TSO6 and ECN, then without
 * ECN, then checksums alone; 0 when none), tried through `set_offload` (tap_set_offload, or a
 * test's stand-in) on `fd`, which is left with none set. */
unsigned tap_probe_offloads(int fd, int (*set_offload)(int fd, unsigned tun_flags));

/* The virtio-net feature bits those offloads let a device offer, both ways: CSUM and
 * GUEST_CSUM for TUN_F_CSUM, HOST_ and GUEST_TSO4 for TUN_F_TSO4, and so on. */
uint64_t tap_offload_features(unsigned offloads);

#endif
