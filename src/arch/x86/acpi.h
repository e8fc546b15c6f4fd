/* ACPI tables for x86_64 guests: how a guest without an MP table or BIOS finds its CPUs, its
 * interrupt controllers, its legacy devices and virtio-mmio devices, and how it powers off.
 *
 * skiff is a hardware-reduced ACPI platform (as Cloud Hypervisor and Firecracker): no SCI, no PM
 * timer, no FACS. The tables are RSDP -> XSDT -> { FADT -> DSDT, MADT [, MCFG] }, written one
 * after another into [X86_ACPI_START, X86_ACPI_END), RSDP first so the guest also finds it by
 * scanning 0xe0000-0xfffff.
 *
 * With PCI, the MCFG names the ECAM window of segment 0, and the DSDT has a host bridge PCI0
 * (PNP0A08, compatible PNP0A03) whose _CRS gives its bus range, the CF8 ports and its 32-bit
 * memory window, plus a motherboard-resources device reserving the ECAM window (Linux uses
 * ECAM only when it is reserved so).
 *
 * With a VMGenID (devices/vmgenid.h), the DSDT has VGEN (_HID "VMGENCTR", which Linux's vmgenid
 * driver matches, _CID "VM_Gen_Counter" as Microsoft's specification names it) whose ADDR method
 * returns the generation ID's guest address as a package of its low and high 32 bits, and a
 * Generic Event Device GED0 (ACPI0013: how a hardware-reduced platform, which has no GPE blocks,
 * raises ACPI events) on an edge-triggered GSI whose _EVT notifies VGEN (0x80): the guest
 * driver then reads the new ID. */
#ifndef SKIFF_X86_ACPI_H
#define SKIFF_X86_ACPI_H

#include <stdbool.h>
#include <stdint.h>

#include "base/guest_mem.h"

/* xAPIC IDs are 8 bits, 0xff is the broadcast ID, and the I/O APIC takes the ID after the last
 * vCPU: vCPUs get 0..253, the I/O APIC 254. More would need x2APIC entries. */
#define ACPI_MAX_CPUS 254
/* The DSDT names them VR00..VRFF. */
#define ACPI_MAX_VIRTIO_MMIO 256
/* KVM's in-kernel I/O APIC has 24 pins, GSIs 0-23 (GSI base 0 in the MADT). */
#define ACPI_IOAPIC_PINS 24

struct acpi_virtio_mmio_dev {
	uint64_t base; /* below 4 GiB: described by a Memory32Fixed descriptor */
	uint64_t size;
	uint32_t gsi; /* the caller gives each device its own: the interrupt is Exclusive */
};

/* A PCI host bridge (segment 0, bus 0). */
struct acpi_pci {
	uint64_t ecam_base, ecam_size; /* 1 MiB per bus, from bus 0; below 4 GiB */
	uint64_t mmio_base, mmio_size; /* the BAR window, below 4 GiB */
	bool cf8;		       /* ports 0xcf8-0xcff decode config mechanism #1 */
};

/* The VMGenID: the 16-byte generation ID's guest address (in memory the e820 map reserves) and
 * the GSI of the Generic Event Device that tells the guest it changed. */
struct acpi_vmgenid {
	uint64_t addr;
	uint32_t gsi;
};

struct acpi_config {
	int nr_cpus; /* 1..ACPI_MAX_CPUS; APIC ID = ACPI processor UID = vCPU index */
	const struct acpi_virtio_mmio_dev *virtio;
	int nr_virtio;
	const struct acpi_pci *pci; /* NULL: no PCI */
	const struct acpi_vmgenid *vmgenid; /* NULL: no VMGenID */
};

/* Writes the tables at X86_ACPI_START and returns the RSDP's guest address in *rsdp_addr.
 * Returns 0, -EINVAL for a config the tables cannot describe, -ENOSPC when they do not fit,
 * -EFAULT when the range is not guest RAM, or -ENOMEM. Nothing is written on failure. */
int acpi_build_tables(const struct guest_mem *mem, const struct acpi_config *cfg,
		      uint64_t *rsdp_addr);

/* The tables as firmware takes them through fw_cfg's table loader (devices/fw_cfg_loader.h):
 * the RSDP, whose XSDT address is an offset into `tables`, and the other tables in one blob
 * whose addresses of its own tables are offsets into it. The loader places both, adds each
 * blob's address at `pointers` (and at the RSDP's XSDT address, offset
 * ACPI_RSDP_XSDT_OFFSET, 8 bytes) and fixes the checksums. */
#define ACPI_RSDP_SIZE		  36
#define ACPI_RSDP_CHECKSUM_OFFSET 8  /* over the first 20 bytes */
#define ACPI_RSDP_V1_LENGTH	  20
#define ACPI_RSDP_XSDT_OFFSET	  24
#define ACPI_RSDP_EXT_CHECKSUM	  32 /* over all 36 */
#define ACPI_TABLE_CHECKSUM	  9  /* a table's checksum byte, over its header's length */
#define ACPI_BLOB_MAX_POINTERS	  8
#define ACPI_BLOB_MAX_TABLES	  8

struct acpi_blob_pointer {
	uint32_t offset;
	uint8_t size;
};

struct acpi_blobs {
	uint8_t rsdp[ACPI_RSDP_SIZE];
	uint8_t *tables; /* malloc'ed; acpi_blobs_free */
	uint32_t tables_len;
	struct acpi_blob_pointer pointers[ACPI_BLOB_MAX_POINTERS];
	int nr_pointers;
	uint32_t tables_at[ACPI_BLOB_MAX_TABLES]; /* where each table starts in `tables` */
	int nr_tables;
};

/* 0, or -EINVAL / -ENOMEM after one logged line. */
int acpi_build_blobs(const struct acpi_config *cfg, struct acpi_blobs *out);
void acpi_blobs_free(struct acpi_blobs *b);
/* The length the header of the table at `offset` of the blob gives. */
uint32_t acpi_table_length(const struct acpi_blobs *b, uint32_t offset);

/* The same into [start, end), which must be 16-byte aligned and below 4 GiB. For tests. */
int acpi_build_tables_at(const struct guest_mem *mem, const struct acpi_config *cfg, uint64_t start,
			 uint64_t end, uint64_t *rsdp_addr);

#endif
