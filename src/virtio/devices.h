/* The virtio devices a VM's config asks for: each is created, given a virtio-mmio slot from the
 * arch (address and interrupt line) and put on the VM's device list (base/device.h), in a fixed
 * order so the guest sees the same device names on every boot: console, disks (vda, vdb, ... in
 * --disk order), network interfaces, rng. On the list a virtio device is its struct
 * virtio_device's `entry`: the list's destroy op takes down its transport and the device, and
 * disks and interfaces show their counters to metrics (stats) and disks take a new backing file
 * (update). */
#ifndef SKIFF_VIRTIO_DEVICES_H
#define SKIFF_VIRTIO_DEVICES_H

struct vm;
struct virtio_device;

/* Creates and attaches every virtio device in vm->cfg. Returns 0 or -errno after one logged
 * line; on failure the devices created so far stay on the VM's device list for vm_destroy(). */
int virtio_devices_create(struct vm *vm);

/* Connects their interrupt lines (virtio_mmio_connect_irq), once arch_vm_finalize() has
 * completed the interrupt controller. Returns 0 or -errno after one logged line. */
int virtio_devices_connect_irqs(struct vm *vm);

/* Fills in dev->entry (kind, ops, and `id`: a disk's or interface's config id, or NULL) as
 * attaching does, so that a device without a transport (unit tests) can go on a device list.
 * Returns 0, or -ENOTSUP for a device type skiff does not attach. */
int virtio_devices_describe(struct virtio_device *dev, const char *id);

#endif
