/* fw_cfg, QEMU's firmware configuration interface (QEMU's docs/specs/fw_cfg.rst): a table of
 * items, each a key and a blob of bytes, that firmware (SeaBIOS, EDK2) and Linux's qemu_fw_cfg
 * driver read. The guest selects an item by its 16-bit key, then reads it byte by byte through
 * the data register or copies it into its memory with a DMA request.
 *
 * Two register layouts over the same table:
 *   x86 ports (FW_CFG_PIO_*):  0x510 selector (16-bit, little-endian), 0x511 data (8-bit),
 *                              0x514 DMA address (64-bit big-endian: high half at 0x514, low
 *                              half at 0x518, whose write starts the transfer)
 *   MMIO (FW_CFG_MMIO_*):      +0 data (1-8 bytes, in the item's byte order), +8 selector
 *                              (16-bit, big-endian), +16 DMA address (one 64-bit big-endian
 *                              write, or the two 32-bit halves, the low one last)
 * Reading the DMA register gives "QEMU CFG". Integer items are little-endian, as the spec says;
 * the file directory (FW_CFG_FILE_DIR) is big-endian and sorted by name.
 *
 * The guest is not trusted. An unknown key reads as zeros; reading past an item's end reads
 * zeros; a DMA request at an address that is not guest RAM, one whose length or address wraps,
 * or a write (no item is writable) sets the ERROR bit in the request's control word and touches
 * nothing else; a request structure that is not in guest RAM is dropped. Nothing ends the VM.
 *
 * Threads: items are added while the VM is built (one thread); the registers serve every vCPU,
 * serialized by the device's lock (there is one selector for all vCPUs, as on QEMU). */
#ifndef SKIFF_DEVICES_FW_CFG_H
#define SKIFF_DEVICES_FW_CFG_H

#include "bus/bus.h"

#include <stdbool.h>
#include <stdint.h>

struct guest_mem;

/* Keys (selector values). */
#define FW_CFG_SIGNATURE      0x00
#define FW_CFG_ID	      0x01
#define FW_CFG_UUID	      0x02
#define FW_CFG_RAM_SIZE	      0x03
#define FW_CFG_NOGRAPHIC      0x04
#define FW_CFG_NB_CPUS	      0x05
#define FW_CFG_MACHINE_ID     0x06
#define FW_CFG_KERNEL_ADDR    0x07
#define FW_CFG_KERNEL_SIZE    0x08
#define FW_CFG_KERNEL_CMDLINE 0x09
#define FW_CFG_INITRD_ADDR    0x0a
#define FW_CFG_INITRD_SIZE    0x0b
#define FW_CFG_BOOT_DEVICE    0x0c
#define FW_CFG_NUMA	      0x0d
#define FW_CFG_BOOT_MENU      0x0e
#define FW_CFG_MAX_CPUS	      0x0f
#define FW_CFG_KERNEL_ENTRY   0x10
#define FW_CFG_KERNEL_DATA    0x11
#define FW_CFG_INITRD_DATA    0x12
#define FW_CFG_CMDLINE_ADDR   0x13
#define FW_CFG_CMDLINE_SIZE   0x14
#define FW_CFG_CMDLINE_DATA   0x15
#define FW_CFG_SETUP_ADDR     0x16
#define FW_CFG_SETUP_SIZE     0x17
#define FW_CFG_SETUP_DATA     0x18
#define FW_CFG_FILE_DIR	      0x19
#define FW_CFG_FILE_FIRST     0x20 /* files get keys from here, in the order they are added */
#define FW_CFG_WRITE_CHANNEL  0x4000 /* a legacy flag in the selector: ignored */
#define FW_CFG_ARCH_LOCAL     0x8000
#define FW_CFG_E820_TABLE     (FW_CFG_ARCH_LOCAL + 3) /* x86, legacy */

#define FW_CFG_ID_TRADITIONAL 0x1 /* FW_CFG_ID: the data register works */
#define FW_CFG_ID_DMA	      0x2 /* FW_CFG_ID: and the DMA interface */

/* The DMA request's control word (big-endian in guest memory, select key in bits 16-31). */
#define FW_CFG_DMA_CTL_ERROR  0x01
#define FW_CFG_DMA_CTL_READ   0x02
#define FW_CFG_DMA_CTL_SKIP   0x04
#define FW_CFG_DMA_CTL_SELECT 0x08
#define FW_CFG_DMA_CTL_WRITE  0x10
#define FW_CFG_DMA_SIGNATURE  0x51454d5520434647ULL /* "QEMU CFG" */

#define FW_CFG_MAX_FILE_NAME 56 /* including the NUL */
#define FW_CFG_MAX_FILES     64

/* The x86 ports: one range from FW_CFG_PIO_BASE, FW_CFG_PIO_LEN ports long. */
#define FW_CFG_PIO_BASE 0x510
#define FW_CFG_PIO_LEN	12
/* The MMIO window's size (its base is the arch's). */
#define FW_CFG_MMIO_LEN 0x18

struct fw_cfg;

/* A device with the signature, the ID (traditional and DMA) and an empty file directory; DMA
 * reaches `mem`. NULL when out of memory. */
struct fw_cfg *fw_cfg_create(const struct guest_mem *mem);
void fw_cfg_destroy(struct fw_cfg *f);
/* Its entry for the VM's device list (base/device.h), whose destroy op frees it; NULL for
 * NULL. */
struct vm_device *fw_cfg_device(struct fw_cfg *f);

/* Sets item `key` to a copy of `len` bytes (replacing an earlier value). Keys below
 * FW_CFG_FILE_FIRST or arch-local ones; 0, -EINVAL for a file or directory key, -ENOMEM. */
int fw_cfg_add_bytes(struct fw_cfg *f, uint16_t key, const void *data, uint32_t len);
/* The same for a little-endian integer. */
int fw_cfg_add_u16(struct fw_cfg *f, uint16_t key, uint16_t v);
int fw_cfg_add_u32(struct fw_cfg *f, uint16_t key, uint32_t v);
int fw_cfg_add_u64(struct fw_cfg *f, uint16_t key, uint64_t v);
/* Adds a named file (a copy of `len` bytes) to the directory and returns its key (>=
 * FW_CFG_FILE_FIRST), or -EINVAL (empty name or one of FW_CFG_MAX_FILE_NAME bytes or more),
 * -EEXIST (the name is taken), -ENOSPC (FW_CFG_MAX_FILES reached), -ENOMEM. */
int fw_cfg_add_file(struct fw_cfg *f, const char *name, const void *data, uint32_t len);
/* Takes ownership of `data` (malloc'ed) instead of copying it: for the kernel and initrd. */
int fw_cfg_add_bytes_owned(struct fw_cfg *f, uint16_t key, void *data, uint32_t len);

/* The registers; opaque is the device. */
extern const struct bus_device_ops fw_cfg_pio_ops;  /* FW_CFG_PIO_LEN ports */
extern const struct bus_device_ops fw_cfg_mmio_ops; /* FW_CFG_MMIO_LEN bytes */

#endif
