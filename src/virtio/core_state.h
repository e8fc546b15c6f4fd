/* Saving and restoring what the virtio core holds for a device as the driver left it: status,
 * the interrupt status, the config generation, the feature and queue selectors, the features the
 * driver accepted and those negotiated, and per queue its size, ready bit, ring addresses and the
 * device's ring indices (next available entry, used index, last signalled used index). One
 * section of the saved-state layout (base/state.h), tagged by the caller (the device's list
 * kind), version 1:
 *
 *   u32 device_id; u16 nr_queues;
 *   u32 status, isr, config_generation; u32 device_features_sel, driver_features_sel, queue_sel;
 *   u64 driver_features; bool driver_features_beyond_64; u64 negotiated features;
 *   per queue: u16 size; bool ready; u64 desc, driver (avail), device (used) ring addresses;
 *              u16 last_avail_idx, used_idx, signalled_used; bool signalled_used_valid.
 *
 * What a device keeps beyond the core (a blk request in flight, net's backend) is not in here.
 * The transport's own state is not either: virtio-pci saves its config space, vectors and MSI-X
 * table in a section of its own, before this one (virtio/pci.h); virtio-mmio's SHMSel is not
 * saved.
 *
 * Threads: both take the core's lock (no vCPU register access meanwhile) and do the queue part
 * on the device's worker thread, so that the indices are not moving while they are read or
 * written. Call them while no vCPU runs (a paused or not yet started VM). */
#ifndef SKIFF_VIRTIO_CORE_STATE_H
#define SKIFF_VIRTIO_CORE_STATE_H

#include "virtio/core.h"

#include <stdint.h>

struct state_reader;
struct state_writer;

#define VIRTIO_CORE_STATE_VERSION 1

/* The core of a device attached to a transport (virtio_core_create makes dev->transport the
 * core). */
static inline struct virtio_core *virtio_core_of(struct virtio_device *dev)
{
	return dev->transport;
}

/* 0, or the writer's failure (-ENOMEM), or -errno when the worker is gone. */
int virtio_core_save(struct virtio_core *c, uint16_t tag, struct state_writer *w);

/* Holds the device (held true) or lets it go: while held it takes nothing from its rings,
 * writes no guest memory and raises no interrupt, whatever its backend brings (a packet on the
 * tap, a connection, a timer); the register accesses of vCPUs and the calls above still work. A
 * snapshot holds the devices from before their state is saved until guest memory is written, a
 * live migration's handoff until the last pages are out: a device that worked on meanwhile
 * would leave used entries in the memory that its saved indices do not know. Its worker's loop
 * is held (base/event_loop.h), and ops->hold stops work done elsewhere. 0, or -errno when the
 * worker is gone. */
int virtio_core_hold(struct virtio_core *c, bool held);

/* Resets the device, then gives it the saved state; a device the driver had running
 * (DRIVER_OK, not DEVICE_NEEDS_RESET) is activated again on its worker, with its queues going on
 * from the saved indices, then told it moved (ops->restored), and interrupts pending at the save are raised again. Returns 0, or the
 * reader's failure with its reason in state_reader_error(): -EBADMSG for truncated or garbled
 * input, for another device type or queue count (fewer queues, down to ops->min_saved_queues,
 * are a state saved before the device had the rest: those stay unready), for values the core would never hold (unknown
 * status bits, features not offered, a queue size not a power of 2 up to the maximum) and for
 * rings outside guest RAM; -EPROTONOSUPPORT for an unknown version. A refusal found before the
 * reset leaves the device untouched; rings outside guest RAM leave it reset. */
int virtio_core_restore(struct virtio_core *c, uint16_t tag, struct state_reader *r);

#endif
