/* The virtio devices a VM's config asks for: each is created, given a virtio-mmio slot from the
 * arch (address and interrupt line) and attached to the VM, in a fixed order so the guest sees
 * the same device names on every boot: console, disks (vda, vdb, ... in --disk order), network
 * interfaces, rng. That order is the creation table in devices.c: one row per device kind, its
 * config resource (config/resource.h: how many the config asks for) and its create function. */
#ifndef SKIFF_VIRTIO_DEVICES_H
#define SKIFF_VIRTIO_DEVICES_H

struct vm;
struct virtio_device;

/* Creates and attaches every virtio device in vm->cfg, filling vm->virtio. Returns 0 or -errno
 * after one logged line; on failure the devices created so far stay in vm->virtio for
 * virtio_devices_destroy(). */
int virtio_devices_create(struct vm *vm);

/* Connects their interrupt lines (virtio_mmio_connect_irq), once arch_vm_finalize() has
 * completed the interrupt controller. Returns 0 or -errno after one logged line. */
int virtio_devices_connect_irqs(struct vm *vm);

/* The virtio-blk device of the disk whose id (vm->cfg->disks[i].id) is `id`, or NULL when there is
 * none (no such id, or the empty id). */
struct virtio_device *virtio_devices_find_disk(struct vm *vm, const char *id);

/* Detaches and frees them all (in-flight requests complete first). */
void virtio_devices_destroy(struct vm *vm);

#endif
