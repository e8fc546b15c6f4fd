/* virtio-console (virtio 1.x 5.3), a single port without multiport: the guest's hvc0. Guest
 * output goes to `out_fd`; host input arrives through virtio_console_receive() from the run
 * loop's console pump. */
#ifndef SKIFF_VIRTIO_CONSOLE_H
#define SKIFF_VIRTIO_CONSOLE_H

#include "virtio/device.h"

#include <stddef.h>
#include <stdint.h>

int virtio_console_create(int out_fd, struct virtio_device **out);

/* Queues host input for the guest; returns how many bytes were taken (0 when the device's
 * buffer is full; the caller retries later, nothing is dropped). Any thread. */
size_t virtio_console_receive(struct virtio_device *dev, const uint8_t *buf, size_t len);

#endif
