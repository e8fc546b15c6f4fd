/* Constants from the virtio 1.x specification (OASIS virtio v1.2): device status bits, feature
 * bits shared by every device type, device IDs, and the virtio-mmio (version 2) register map. */
#ifndef SKIFF_VIRTIO_H
#define SKIFF_VIRTIO_H

/* 2.1 Device status field */
#define VIRTIO_STATUS_ACKNOWLEDGE	 0x01
#define VIRTIO_STATUS_DRIVER		 0x02
#define VIRTIO_STATUS_DRIVER_OK		 0x04
#define VIRTIO_STATUS_FEATURES_OK	 0x08
#define VIRTIO_STATUS_DEVICE_NEEDS_RESET 0x40
#define VIRTIO_STATUS_FAILED		 0x80

/* 6 Reserved feature bits */
#define VIRTIO_F_INDIRECT_DESC 28
#define VIRTIO_F_EVENT_IDX     29
#define VIRTIO_F_VERSION_1     32

/* 5 Device types */
#define VIRTIO_ID_NET	  1
#define VIRTIO_ID_BLOCK	  2
#define VIRTIO_ID_CONSOLE 3
#define VIRTIO_ID_RNG	  4
#define VIRTIO_ID_VSOCK	  19
#define VIRTIO_ID_FS	  26

/* 4.2.2 MMIO device register layout (offsets from the device's base) */
#define VIRTIO_MMIO_MAGIC_VALUE		0x000 /* "virt" */
#define VIRTIO_MMIO_VERSION		0x004 /* 2: modern */
#define VIRTIO_MMIO_DEVICE_ID		0x008
#define VIRTIO_MMIO_VENDOR_ID		0x00c
#define VIRTIO_MMIO_DEVICE_FEATURES	0x010
#define VIRTIO_MMIO_DEVICE_FEATURES_SEL 0x014
#define VIRTIO_MMIO_DRIVER_FEATURES	0x020
#define VIRTIO_MMIO_DRIVER_FEATURES_SEL 0x024
#define VIRTIO_MMIO_QUEUE_SEL		0x030
#define VIRTIO_MMIO_QUEUE_NUM_MAX	0x034
#define VIRTIO_MMIO_QUEUE_NUM		0x038
#define VIRTIO_MMIO_QUEUE_READY		0x044
#define VIRTIO_MMIO_QUEUE_NOTIFY	0x050
#define VIRTIO_MMIO_INTERRUPT_STATUS	0x060
#define VIRTIO_MMIO_INTERRUPT_ACK	0x064
#define VIRTIO_MMIO_STATUS		0x070
#define VIRTIO_MMIO_QUEUE_DESC_LOW	0x080
#define VIRTIO_MMIO_QUEUE_DESC_HIGH	0x084
#define VIRTIO_MMIO_QUEUE_DRIVER_LOW	0x090 /* the available ring */
#define VIRTIO_MMIO_QUEUE_DRIVER_HIGH	0x094
#define VIRTIO_MMIO_QUEUE_DEVICE_LOW	0x0a0 /* the used ring */
#define VIRTIO_MMIO_QUEUE_DEVICE_HIGH	0x0a4
#define VIRTIO_MMIO_SHM_SEL		0x0ac
#define VIRTIO_MMIO_SHM_LEN_LOW		0x0b0
#define VIRTIO_MMIO_SHM_LEN_HIGH	0x0b4
#define VIRTIO_MMIO_SHM_BASE_LOW	0x0b8
#define VIRTIO_MMIO_SHM_BASE_HIGH	0x0bc
#define VIRTIO_MMIO_QUEUE_RESET		0x0c0
#define VIRTIO_MMIO_CONFIG_GENERATION	0x0fc
#define VIRTIO_MMIO_CONFIG		0x100 /* device-specific configuration space */

#define VIRTIO_MMIO_MAGIC	   0x74726976 /* "virt", little-endian */
#define VIRTIO_MMIO_VENDOR	   0x46464b53 /* "SKFF" */
#define VIRTIO_MMIO_INT_VRING	   0x1 /* InterruptStatus: used buffer notification */
#define VIRTIO_MMIO_INT_CONFIG	   0x2 /* InterruptStatus: configuration change */
#define VIRTIO_MMIO_SIZE	   0x200 /* registers plus up to 256 bytes of config space */

#endif
