/* The device tree skiff gives an arm64 Linux guest, built with libfdt's sequential-write API from
 * a plain description (no KVM involved, so unit tests can parse the result): memory, cpus with
 * PSCI, the PSCI node, the GIC (v2 or v3, a v3 with an ITS below it for PCI), the architected
 * timer, the PMU, the 16550A UART, the PL061 GPIO controller with its apb_pclk clock and the
 * gpio-keys buttons (Ctrl, Alt, Delete) on it, the virtio-mmio devices, a pci-host-ecam-generic
 * host bridge whose MSIs go to the ITS, and /chosen (bootargs, initrd, stdout-path).
 *
 * With a VMGenID (devices/vmgenid.h): a "microsoft,vmgenid" node whose reg is the 16-byte
 * generation ID and whose edge-triggered SPI tells the guest it changed, as Linux 6.10 and later
 * read it (drivers/virt/vmgenid.c; older kernels, Debian 12's 6.1 among them, know only the
 * ACPI device), and a /memreserve/ entry for the ID's page of RAM so the guest leaves it alone. */
#ifndef SKIFF_ARM64_FDT_H
#define SKIFF_ARM64_FDT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum arm64_gic_version { ARM64_GICV2 = 2, ARM64_GICV3 = 3 };

struct arm64_fdt_virtio {
	uint64_t base;
	uint32_t spi;
};

/* A pci-host-ecam-generic host bridge. Requester id = device id at the ITS (msi-map is the
 * identity over the 16-bit requester ids). */
struct arm64_fdt_pci {
	uint64_t ecam_base;
	uint32_t bus_end;	       /* buses 0..bus_end; the ECAM reg is (bus_end + 1) MiB */
	uint64_t mmio_base, mmio_size; /* the memory window (32-bit BARs), identity-mapped */
};

struct arm64_fdt_config {
	uint64_t ram_base, ram_size;
	int nr_cpus;
	const uint64_t *mpidr; /* nr_cpus MPIDR_EL1 values, as KVM reports them */
	enum arm64_gic_version gic;
	uint64_t its_base; /* 0: no ITS; else a GICv3 ITS (128 KiB) */
	bool pmu;	   /* the vCPUs have a PMUv3 wired to its PPI */
	uint64_t uart_base;
	uint32_t uart_spi;
	uint64_t gpio_base; /* 0: no PL061 and no gpio-keys */
	uint32_t gpio_spi;
	uint64_t fw_cfg_base; /* 0: no fw_cfg; else its MMIO window (FW_CFG_MMIO_LEN bytes) */
	const struct arm64_fdt_virtio *virtio;
	int nr_virtio;
	const struct arm64_fdt_pci *pci; /* NULL: no PCI; else the ITS must be there */
	uint64_t vmgenid_base; /* 0: no VMGenID; else its page, inside RAM, page-aligned */
	uint32_t vmgenid_spi;
	const char *bootargs;		 /* NULL: none */
	uint64_t initrd_start;		 /* initrd_end == initrd_start: no initrd */
	uint64_t initrd_end;
};

/* Writes the blob into buf (at most `size` bytes). Returns its length, or -ENOSPC when it does
 * not fit, -EINVAL for a description that cannot be expressed. */
int arm64_fdt_build(const struct arm64_fdt_config *cfg, void *buf, size_t size);

/* The "reg" of a cpu node: MPIDR_EL1's affinity fields Aff3..Aff0. */
uint64_t arm64_mpidr_affinity(uint64_t mpidr);

#endif
