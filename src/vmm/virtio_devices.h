/* The virtio devices a VM's config asks for: each is created, given a virtio-mmio slot from the
 * arch (address and interrupt line), or with --enable-pci a slot on the PCI host bridge's bus 0
 * (virtio/pci.h), and put on the VM's device list (base/device.h), in a fixed
 * order so the guest sees the same device names on every boot: console, disks (vda, vdb, ... in
 * --disk order), network interfaces, rng. That order is the creation table in devices.c: one row
 * per device kind, its config resource (config/resource.h: how many the config asks for) and its
 * create function. On the list a virtio device is an entry holding the device and its transport:
 * the entry's destroy op takes down both, disks and interfaces show their counters to metrics
 * (stats), and disks take a new backing file (update). */
#ifndef SKIFF_VMM_VIRTIO_DEVICES_H
#define SKIFF_VMM_VIRTIO_DEVICES_H

struct vm;
struct vm_device;
struct virtio_device;

/* Creates and attaches every virtio device in vm->cfg. Returns 0 or -errno after one logged
 * line; on failure the devices created so far stay on the VM's device list for vm_destroy(). */
int virtio_devices_create(struct vm *vm);

/* Connects the virtio-mmio devices' interrupt lines (virtio_mmio_connect_irq), once
 * arch_vm_finalize() has completed the interrupt controller (virtio-pci devices get their MSI
 * routes as the guest programs them). A VM without one (a bare-metal --raw guest) gets no
 * interrupt lines: its guest polls the used rings. Returns 0 or -errno after one logged line. */
int virtio_devices_connect_irqs(struct vm *vm);

/* A device-list entry for `dev` as attaching makes one (kind, ops, and `id`: a disk's or
 * interface's config id, or NULL), but without a transport: for a device driven without one (unit
 * tests). Destroying the entry frees only the entry; the device stays the caller's. NULL after a
 * logged line for a device type skiff does not attach, or out of memory. */
struct vm_device *virtio_devices_entry(struct virtio_device *dev, const char *id);

#endif
