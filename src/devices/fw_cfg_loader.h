/* fw_cfg's table loader ("etc/table-loader"): a script of 128-byte commands that firmware
 * (SeaBIOS, EDK2) runs to place blobs that are fw_cfg files in guest memory and link them: how
 * QEMU hands over ACPI tables that firmware did not build. The commands (little-endian):
 *   ALLOCATE      file[56], align (u32), zone (u8: HIGH or FSEG, the BIOS's 0xF0000 segment)
 *   ADD_POINTER   dest_file[56], src_file[56], offset (u32), size (u8: 1, 2, 4 or 8): adds the
 *                 address src_file got to the size-byte value at dest_file + offset
 *   ADD_CHECKSUM  file[56], offset, start, length (u32): subtracts the byte sum of
 *                 [start, start + length) from the byte at offset, so the range sums to 0
 * A script is built on the heap; the first failure (out of memory, a name too long) sticks and
 * fw_cfg_loader_finish() reports it. */
#ifndef SKIFF_DEVICES_FW_CFG_LOADER_H
#define SKIFF_DEVICES_FW_CFG_LOADER_H

#include <stddef.h>
#include <stdint.h>

#define FW_CFG_LOADER_FILE	 "etc/table-loader"
#define FW_CFG_LOADER_ENTRY_SIZE 128

#define FW_CFG_LOADER_ALLOCATE	   1
#define FW_CFG_LOADER_ADD_POINTER  2
#define FW_CFG_LOADER_ADD_CHECKSUM 3

#define FW_CFG_LOADER_ZONE_HIGH 1
#define FW_CFG_LOADER_ZONE_FSEG 2

struct fw_cfg_loader {
	uint8_t *buf;
	size_t len, cap;
	int err;
};

void fw_cfg_loader_init(struct fw_cfg_loader *l);
void fw_cfg_loader_allocate(struct fw_cfg_loader *l, const char *file, uint32_t align,
			    uint8_t zone);
void fw_cfg_loader_add_pointer(struct fw_cfg_loader *l, const char *dest_file, const char *src_file,
			       uint32_t offset, uint8_t size);
void fw_cfg_loader_add_checksum(struct fw_cfg_loader *l, const char *file, uint32_t offset,
				uint32_t start, uint32_t length);
/* 0 (the script is l->buf, l->len bytes) or the first failure: -ENOMEM, -EINVAL. */
int fw_cfg_loader_finish(struct fw_cfg_loader *l);
void fw_cfg_loader_free(struct fw_cfg_loader *l);

#endif
