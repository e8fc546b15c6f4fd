/* virtio-fs (virtio 1.2 5.11) through a vhost-user backend (virtiofsd): skiff offers the device
 * (its config space: the tag and one request queue) and hands its queues to the backend, which
 * serves FUSE requests from the guest's rings itself (virtio/vhost_user.h). The device connects
 * to the backend when it is created (a socket the user gives, or a virtiofsd skiff starts on a
 * shared directory: virtio/virtiofsd.h) and gives it guest memory and the rings when the driver
 * sets DRIVER_OK; a reset takes the rings back (GET_VRING_BASE).
 *
 * A backend that goes away (its socket closes, a reply is garbage or late) is logged once, and
 * from then on the device answers every request itself with a FUSE error (EIO): the guest sees
 * I/O errors, not a hang, and the VM goes on. Requests the backend had taken but not answered
 * when it died are answered too (counted from the used ring's index: a backend that answered
 * out of order may leave the driver one it already had, which its ring checks then refuse).
 *
 * Guest memory must be shared (guest_mem_map_shared): vm.c maps it so when the config has one. */
#ifndef SKIFF_VIRTIO_FS_H
#define SKIFF_VIRTIO_FS_H

#include "virtio/device.h"
#include "config/vm_config.h"

/* Connects to the backend (starting virtiofsd for a shared_dir) and opens the vhost-user
 * session. Returns 0 with *out set, or -errno after one logged line. */
int virtio_fs_create(const struct fs_config *cfg, struct virtio_device **out);

/* For tests: a device on an already connected backend socket (taken: closed on destroy). */
int virtio_fs_create_on_fd(const char *tag, int fd, struct virtio_device **out);

#endif
