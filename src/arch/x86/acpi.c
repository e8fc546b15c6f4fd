#include "arch/x86/acpi.h"

#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "arch/x86/aml.h"
#include "arch/x86/layout.h"
#include "base/log.h"

/* Tables are little-endian; so is every host skiff builds for, and the structs below are
 * filled in host byte order. */
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "ACPI tables assume a little-endian host");

#define ACPI_OEM_ID	  "SKIFF "
#define ACPI_OEM_TABLE_ID "SKIFFVM "
#define ACPI_CREATOR_ID	  "SKFF"
#define ACPI_TABLE_ALIGN  16

/* ACPI 6.5, 5.2.3.2: Generic Address Structure. */
struct acpi_gas {
	uint8_t space_id;
	uint8_t bit_width;
	uint8_t bit_offset;
	uint8_t access_size;
	uint64_t address;
} __attribute__((packed));
static_assert(sizeof(struct acpi_gas) == 12, "GAS layout");

#define ACPI_GAS_SYSTEM_IO   1
#define ACPI_GAS_ACCESS_BYTE 1

/* 5.2.5.3: Root System Description Pointer, revision 2. */
struct acpi_rsdp {
	char signature[8];
	uint8_t checksum; /* of the first 20 bytes (the ACPI 1.0 structure) */
	char oem_id[6];
	uint8_t revision;
	uint32_t rsdt_address;
	uint32_t length;
	uint64_t xsdt_address;
	uint8_t extended_checksum; /* of all 36 bytes */
	uint8_t reserved[3];
} __attribute__((packed));
static_assert(sizeof(struct acpi_rsdp) == 36, "RSDP layout");
static_assert(offsetof(struct acpi_rsdp, length) == 20, "RSDP layout");

/* 5.2.6: the header every other table starts with. */
struct acpi_table_header {
	char signature[4];
	uint32_t length;
	uint8_t revision;
	uint8_t checksum;
	char oem_id[6];
	char oem_table_id[8];
	uint32_t oem_revision;
	char creator_id[4];
	uint32_t creator_revision;
} __attribute__((packed));
static_assert(sizeof(struct acpi_table_header) == 36, "table header layout");

/* 5.2.8: Extended System Description Table: FADT, MADT and, with PCI, MCFG. */
#define XSDT_ENTRIES 3
struct acpi_xsdt {
	struct acpi_table_header header;
	uint64_t entry[XSDT_ENTRIES];
} __attribute__((packed));
static_assert(sizeof(struct acpi_xsdt) == 36 + 8 * XSDT_ENTRIES, "XSDT layout");

/* PCI Firmware Specification 3.3, 4.1.2: the MCFG, with one allocation (segment 0). */
struct acpi_mcfg {
	struct acpi_table_header header;
	uint64_t reserved;
	uint64_t base;
	uint16_t segment;
	uint8_t start_bus;
	uint8_t end_bus;
	uint32_t reserved2;
} __attribute__((packed));
static_assert(sizeof(struct acpi_mcfg) == 36 + 8 + 16, "MCFG layout");

/* 5.2.9: Fixed ACPI Description Table, revision 6 (ACPI 6.0 and later). */
struct acpi_fadt {
	struct acpi_table_header header;
	uint32_t firmware_ctrl;
	uint32_t dsdt;
	uint8_t reserved0;
	uint8_t preferred_pm_profile;
	uint16_t sci_int;
	uint32_t smi_cmd;
	uint8_t acpi_enable;
	uint8_t acpi_disable;
	uint8_t s4bios_req;
	uint8_t pstate_cnt;
	uint32_t pm1a_evt_blk;
	uint32_t pm1b_evt_blk;
	uint32_t pm1a_cnt_blk;
	uint32_t pm1b_cnt_blk;
	uint32_t pm2_cnt_blk;
	uint32_t pm_tmr_blk;
	uint32_t gpe0_blk;
	uint32_t gpe1_blk;
	uint8_t pm1_evt_len;
	uint8_t pm1_cnt_len;
	uint8_t pm2_cnt_len;
	uint8_t pm_tmr_len;
	uint8_t gpe0_blk_len;
	uint8_t gpe1_blk_len;
	uint8_t gpe1_base;
	uint8_t cst_cnt;
	uint16_t p_lvl2_lat;
	uint16_t p_lvl3_lat;
	uint16_t flush_size;
	uint16_t flush_stride;
	uint8_t duty_offset;
	uint8_t duty_width;
	uint8_t day_alrm;
	uint8_t mon_alrm;
	uint8_t century;
	uint16_t iapc_boot_arch;
	uint8_t reserved1;
	uint32_t flags;
	struct acpi_gas reset_reg;
	uint8_t reset_value;
	uint16_t arm_boot_arch;
	uint8_t minor_version;
	uint64_t x_firmware_ctrl;
	uint64_t x_dsdt;
	struct acpi_gas x_pm1a_evt_blk;
	struct acpi_gas x_pm1b_evt_blk;
	struct acpi_gas x_pm1a_cnt_blk;
	struct acpi_gas x_pm1b_cnt_blk;
	struct acpi_gas x_pm2_cnt_blk;
	struct acpi_gas x_pm_tmr_blk;
	struct acpi_gas x_gpe0_blk;
	struct acpi_gas x_gpe1_blk;
	struct acpi_gas sleep_control_reg;
	struct acpi_gas sleep_status_reg;
	uint64_t hypervisor_vendor_id;
} __attribute__((packed));
static_assert(sizeof(struct acpi_fadt) == 276, "FADT layout");
static_assert(offsetof(struct acpi_fadt, iapc_boot_arch) == 109, "FADT layout");
static_assert(offsetof(struct acpi_fadt, flags) == 112, "FADT layout");
static_assert(offsetof(struct acpi_fadt, reset_reg) == 116, "FADT layout");
static_assert(offsetof(struct acpi_fadt, minor_version) == 131, "FADT layout");
static_assert(offsetof(struct acpi_fadt, x_dsdt) == 140, "FADT layout");
static_assert(offsetof(struct acpi_fadt, sleep_control_reg) == 244, "FADT layout");
static_assert(offsetof(struct acpi_fadt, hypervisor_vendor_id) == 268, "FADT layout");

/* FADT flags and IA-PC boot architecture flags (5.2.9.3, 5.2.9.4). */
#define FADT_F_PWR_BUTTON      (1u << 4) /* set: no fixed-feature power button */
#define FADT_F_SLP_BUTTON      (1u << 5) /* set: no fixed-feature sleep button */
#define FADT_F_RESET_REG_SUP   (1u << 10)
#define FADT_F_HW_REDUCED_ACPI (1u << 20)
#define FADT_BOOT_8042	       (1u << 1)
#define FADT_BOOT_VGA_ABSENT   (1u << 2)

#define FADT_MINOR_VERSION 5 /* ACPI 6.5; the layout is the same since 6.0 */

/* 5.2.12: Multiple APIC Description Table and the entries skiff uses. */
struct acpi_madt {
	struct acpi_table_header header;
	uint32_t local_apic_address;
	uint32_t flags;
} __attribute__((packed));
static_assert(sizeof(struct acpi_madt) == 44, "MADT layout");

#define MADT_PCAT_COMPAT 1u /* an 8259 PIC pair is present too */

enum madt_type {
	MADT_LOCAL_APIC = 0,
	MADT_IO_APIC = 1,
	MADT_LOCAL_APIC_NMI = 4,
};

struct madt_local_apic {
	uint8_t type;
	uint8_t length;
	uint8_t processor_uid;
	uint8_t apic_id;
	uint32_t flags;
} __attribute__((packed));
static_assert(sizeof(struct madt_local_apic) == 8, "MADT local APIC layout");

#define MADT_LAPIC_ENABLED 1u

struct madt_io_apic {
	uint8_t type;
	uint8_t length;
	uint8_t io_apic_id;
	uint8_t reserved;
	uint32_t address;
	uint32_t gsi_base;
} __attribute__((packed));
static_assert(sizeof(struct madt_io_apic) == 12, "MADT I/O APIC layout");

struct madt_local_apic_nmi {
	uint8_t type;
	uint8_t length;
	uint8_t processor_uid; /* 0xff: all processors */
	uint16_t flags;	       /* MPS INTI flags */
	uint8_t lint;
} __attribute__((packed));
static_assert(sizeof(struct madt_local_apic_nmi) == 6, "MADT local APIC NMI layout");

#define MPS_INTI_ACTIVE_HIGH (1u << 0)
#define MPS_INTI_EDGE	     (1u << 2)

static size_t align_up(size_t x)
{
	return (x + ACPI_TABLE_ALIGN - 1) & ~(size_t)(ACPI_TABLE_ALIGN - 1);
}

static uint8_t checksum(const void *data, size_t len)
{
	const uint8_t *p = data;
	uint8_t sum = 0;

	for (size_t i = 0; i < len; i++)
		sum += p[i];
	return (uint8_t)-sum;
}

static void header_init(struct acpi_table_header *h, const char *signature, uint32_t length,
			uint8_t revision)
{
	memcpy(h->signature, signature, 4);
	h->length = length;
	h->revision = revision;
	memcpy(h->oem_id, ACPI_OEM_ID, 6);
	memcpy(h->oem_table_id, ACPI_OEM_TABLE_ID, 8);
	h->oem_revision = 1;
	memcpy(h->creator_id, ACPI_CREATOR_ID, 4);
	h->creator_revision = 1;
}

/* Sets the checksum of the table at `table` (its header gives the length). */
static void table_seal(uint8_t *table)
{
	struct acpi_table_header *h = (struct acpi_table_header *)table;

	h->checksum = 0;
	h->checksum = checksum(table, h->length);
}

static struct acpi_gas gas_io8(uint16_t port)
{
	return (struct acpi_gas){
	    .space_id = ACPI_GAS_SYSTEM_IO,
	    .bit_width = 8,
	    .access_size = ACPI_GAS_ACCESS_BYTE,
	    .address = port,
	};
}

/* Legacy ISA devices, for the guest's PNP drivers (8250_pnp, i8042 pnp, rtc_cmos). */
struct isa_ports {
	uint16_t base;
	uint8_t len;
};

struct isa_device {
	const char *name;
	const char *hid;
	struct isa_ports ports[2];
	int nr_ports;
	int irq; /* -1: none */
};

static const struct isa_device isa_devices[] = {
    {
	.name = "COM1",
	.hid = "PNP0501",
	.ports = {{X86_COM1_PORT, 8}},
	.nr_ports = 1,
	.irq = X86_COM1_IRQ,
    },
    {
	/* i8042's PNP probe wants the data port first and the command port second. */
	.name = "KBD_",
	.hid = "PNP0303",
	.ports = {{X86_I8042_DATA_PORT, 1}, {X86_I8042_CMD_PORT, 1}},
	.nr_ports = 2,
	.irq = X86_I8042_KBD_IRQ,
    },
    {
	.name = "RTC_",
	.hid = "PNP0B00",
	.ports = {{X86_RTC_PORT, 2}},
	.nr_ports = 1,
	.irq = X86_RTC_IRQ,
    },
    {
	/* Motherboard resources: the power device's ports, so no driver is handed them. */
	.name = "PWRD",
	.hid = "PNP0C02",
	.ports = {{X86_ACPI_PM_PORT, X86_ACPI_PM_LEN}},
	.nr_ports = 1,
	.irq = -1,
    },
};

static void dsdt_isa_device(struct aml *a, const struct isa_device *d)
{
	struct aml_pkg dev, crs;

	dev = aml_device_begin(a, d->name);
	aml_name_eisaid(a, "_HID", d->hid);
	aml_name_integer(a, "_UID", 0);
	aml_name(a, "_CRS");
	crs = aml_resource_template_begin(a);
	for (int i = 0; i < d->nr_ports; i++)
		aml_io(a, d->ports[i].base, d->ports[i].len);
	/* ISA interrupts are edge-triggered, active high, as KVM's PIC and IOAPIC pins expect. */
	if (d->irq >= 0)
		aml_interrupt(a, AML_IRQ_CONSUMER | AML_IRQ_EDGE, (uint32_t)d->irq);
	aml_end(a, crs);
	aml_end(a, dev);
}

static void dsdt_virtio_mmio_device(struct aml *a, int index, const struct acpi_virtio_mmio_dev *v)
{
	static const char hex[] = "0123456789ABCDEF";
	char name[5] = {'V', 'R', hex[(index >> 4) & 0xf], hex[index & 0xf], 0};
	struct aml_pkg dev, crs;

	dev = aml_device_begin(a, name);
	/* The ACPI id Linux's virtio_mmio driver matches. */
	aml_name_string(a, "_HID", "LNRO0005");
	aml_name_integer(a, "_UID", (uint64_t)index);
	aml_name(a, "_CRS");
	crs = aml_resource_template_begin(a);
	aml_memory32_fixed(a, true, (uint32_t)v->base, (uint32_t)v->size);
	/* Edge, active high (as Firecracker): the device raises its interrupt as a pulse, an irqfd
	 * write; a level line would need KVM's resample-on-EOI irqfd to know when to drop. The
	 * guest programs its I/O APIC pin from these flags, so they must match the device. */
	aml_interrupt(a, AML_IRQ_CONSUMER | AML_IRQ_EDGE, v->gsi);
	aml_end(a, crs);
	aml_end(a, dev);
}

/* The PCI host bridge: segment 0, bus 0 up to what the ECAM window covers. */
static void dsdt_pci_host(struct aml *a, const struct acpi_pci *pci)
{
	struct aml_pkg dev, crs;
	uint16_t last_bus = (uint16_t)((pci->ecam_size >> 20) - 1);

	dev = aml_device_begin(a, "PCI0");
	aml_name_eisaid(a, "_HID", "PNP0A08");
	aml_name_eisaid(a, "_CID", "PNP0A03");
	aml_name_integer(a, "_UID", 0);
	aml_name_integer(a, "_SEG", 0);
	aml_name_integer(a, "_BBN", 0);
	aml_name(a, "_CRS");
	crs = aml_resource_template_begin(a);
	aml_word_bus_number(a, 0, last_bus);
	if (pci->cf8)
		aml_io(a, X86_PCI_CONFIG_PORT, X86_PCI_CONFIG_LEN);
	aml_dword_memory(a, (uint32_t)pci->mmio_base,
			 (uint32_t)(pci->mmio_base + pci->mmio_size - 1));
	aml_end(a, crs);
	aml_end(a, dev);

	/* Motherboard resources: the ECAM window, which Linux wants reserved before it uses the
	 * MCFG. (_UID 1: PWRD is PNP0C02 _UID 0.) */
	dev = aml_device_begin(a, "ECAM");
	aml_name_eisaid(a, "_HID", "PNP0C02");
	aml_name_integer(a, "_UID", 1);
	aml_name(a, "_CRS");
	crs = aml_resource_template_begin(a);
	aml_memory32_fixed(a, false, (uint32_t)pci->ecam_base, (uint32_t)pci->ecam_size);
	aml_end(a, crs);
	aml_end(a, dev);
}

/* The VMGenID device and the Generic Event Device that notifies it. The GED's only interrupt is
 * the VMGenID's, so _EVT notifies VGEN whatever GSI it is handed (Linux calls _EVT for an
 * interrupt whose _Exx it does not find). */
static void dsdt_vmgenid(struct aml *a, const struct acpi_vmgenid *g)
{
	struct aml_pkg dev, method, pkg, crs;

	dev = aml_device_begin(a, "VGEN");
	aml_name_string(a, "_HID", "VMGENCTR");
	aml_name_string(a, "_CID", "VM_Gen_Counter");
	aml_name_string(a, "_DDN", "VM_Gen_Counter");
	method = aml_method_begin(a, "ADDR", 0);
	aml_return(a);
	pkg = aml_package_begin(a, 2);
	aml_integer(a, g->addr & 0xffffffffu);
	aml_integer(a, g->addr >> 32);
	aml_end(a, pkg);
	aml_end(a, method);
	aml_end(a, dev);

	dev = aml_device_begin(a, "GED0");
	aml_name_string(a, "_HID", "ACPI0013");
	aml_name_integer(a, "_UID", 0);
	aml_name(a, "_CRS");
	crs = aml_resource_template_begin(a);
	/* Edge, active high: skiff pulses the line. */
	aml_interrupt(a, AML_IRQ_CONSUMER | AML_IRQ_EDGE, g->gsi);
	aml_end(a, crs);
	method = aml_method_begin(a, "_EVT", 1);
	aml_notify(a, "\\_SB_.VGEN", 0x80);
	aml_end(a, method);
	aml_end(a, dev);
}

/* The DSDT's AML (without its header) into `a`. */
static int dsdt_build(struct aml *a, const struct acpi_config *cfg)
{
	struct aml_pkg s5, sb;

	/* \_S5_: the SLP_TYP value the guest writes into the sleep control register to power off
	 * (the other three elements are reserved). */
	aml_name(a, "_S5_");
	s5 = aml_package_begin(a, 4);
	aml_integer(a, X86_ACPI_S5_SLP_TYP);
	aml_integer(a, 0);
	aml_integer(a, 0);
	aml_integer(a, 0);
	aml_end(a, s5);

	sb = aml_scope_begin(a, "\\_SB_");
	for (size_t i = 0; i < sizeof(isa_devices) / sizeof(isa_devices[0]); i++)
		dsdt_isa_device(a, &isa_devices[i]);
	for (int i = 0; i < cfg->nr_virtio; i++)
		dsdt_virtio_mmio_device(a, i, &cfg->virtio[i]);
	if (cfg->pci)
		dsdt_pci_host(a, cfg->pci);
	if (cfg->vmgenid)
		dsdt_vmgenid(a, cfg->vmgenid);
	aml_end(a, sb);

	return aml_finish(a);
}

static int config_check(const struct acpi_config *cfg)
{
	if (cfg->nr_cpus < 1 || cfg->nr_cpus > ACPI_MAX_CPUS) {
		log_error("acpi: %d vCPUs: the MADT describes 1 to %d", cfg->nr_cpus,
			  ACPI_MAX_CPUS);
		return -EINVAL;
	}
	if (cfg->nr_virtio < 0 || cfg->nr_virtio > ACPI_MAX_VIRTIO_MMIO) {
		log_error("acpi: %d virtio-mmio devices: the DSDT describes 0 to %d",
			  cfg->nr_virtio, ACPI_MAX_VIRTIO_MMIO);
		return -EINVAL;
	}
	if (cfg->nr_virtio > 0 && !cfg->virtio) {
		log_error("acpi: %d virtio-mmio devices but no list of them", cfg->nr_virtio);
		return -EINVAL;
	}
	if (cfg->pci) {
		const struct acpi_pci *p = cfg->pci;

		if (p->ecam_size < (1ULL << 20) || p->ecam_size > (256ULL << 20) ||
		    (p->ecam_size & ((1ULL << 20) - 1)) || p->ecam_base > (1ULL << 32) - p->ecam_size ||
		    p->mmio_size == 0 || p->mmio_base > (1ULL << 32) - p->mmio_size) {
			log_error("acpi: PCI windows (ECAM 0x%llx+0x%llx, memory 0x%llx+0x%llx) are "
				  "not whole buses and ranges below 4 GiB",
				  (unsigned long long)p->ecam_base, (unsigned long long)p->ecam_size,
				  (unsigned long long)p->mmio_base, (unsigned long long)p->mmio_size);
			return -EINVAL;
		}
	}
	if (cfg->vmgenid && cfg->vmgenid->gsi >= ACPI_IOAPIC_PINS) {
		log_error("acpi: VMGenID's GSI %u: the I/O APIC has GSIs 0-%d", cfg->vmgenid->gsi,
			  ACPI_IOAPIC_PINS - 1);
		return -EINVAL;
	}
	for (int i = 0; i < cfg->nr_virtio; i++) {
		const struct acpi_virtio_mmio_dev *v = &cfg->virtio[i];

		if (v->size == 0 || v->size > (1ULL << 32) || v->base > (1ULL << 32) - v->size) {
			log_error("acpi: virtio-mmio device %d at 0x%llx size 0x%llx: not a range "
				  "below 4 GiB",
				  i, (unsigned long long)v->base, (unsigned long long)v->size);
			return -EINVAL;
		}
		if (v->gsi >= ACPI_IOAPIC_PINS) {
			log_error("acpi: virtio-mmio device %d at 0x%llx: GSI %u, the I/O APIC has "
				  "GSIs 0-%d",
				  i, (unsigned long long)v->base, v->gsi, ACPI_IOAPIC_PINS - 1);
			return -EINVAL;
		}
	}
	return 0;
}

static void fadt_fill(struct acpi_fadt *fadt, uint64_t dsdt_addr)
{
	header_init(&fadt->header, "FACP", sizeof(*fadt), 6);
	fadt->dsdt = (uint32_t)dsdt_addr;
	fadt->x_dsdt = dsdt_addr;
	fadt->flags =
	    FADT_F_HW_REDUCED_ACPI | FADT_F_RESET_REG_SUP | FADT_F_PWR_BUTTON | FADT_F_SLP_BUTTON;
	/* Linux marks the i8042 absent unless the 8042 flag is set. MSI is not declared
	 * unsupported: there is no PCI yet, and the flag would have to be undone when there is. */
	fadt->iapc_boot_arch = FADT_BOOT_8042 | FADT_BOOT_VGA_ABSENT;
	/* Linux's RTC driver reads the century register only when the FADT names it. */
	fadt->century = X86_RTC_CENTURY_INDEX;
	fadt->reset_reg = gas_io8(X86_ACPI_RESET_PORT);
	fadt->reset_value = X86_ACPI_RESET_VALUE;
	fadt->minor_version = FADT_MINOR_VERSION;
	/* Linux offers ACPI power-off on a hardware-reduced platform only when both are set. */
	fadt->sleep_control_reg = gas_io8(X86_ACPI_SLEEP_CTL);
	fadt->sleep_status_reg = gas_io8(X86_ACPI_SLEEP_STS);
	memcpy(&fadt->hypervisor_vendor_id, "SKIFFVMM", 8);
}

static size_t madt_size(int nr_cpus)
{
	return sizeof(struct acpi_madt) + (size_t)nr_cpus * sizeof(struct madt_local_apic) +
	       sizeof(struct madt_io_apic) + sizeof(struct madt_local_apic_nmi);
}

static void madt_fill(uint8_t *table, int nr_cpus)
{
	struct acpi_madt madt = {
	    .local_apic_address = (uint32_t)X86_LAPIC_ADDR,
	    .flags = MADT_PCAT_COMPAT,
	};
	/* The I/O APIC's ID follows the vCPUs' so that no APIC ID is used twice. (KVM's I/O APIC
	 * ID register keeps 4 bits; 64-bit Linux takes the MADT's ID and never reads it.) */
	struct madt_io_apic ioapic = {
	    .type = MADT_IO_APIC,
	    .length = sizeof(ioapic),
	    .io_apic_id = (uint8_t)nr_cpus,
	    .address = (uint32_t)X86_IOAPIC_ADDR,
	    .gsi_base = 0,
	};
	/* Every local APIC's LINT1 is wired to NMI, as on a PC. */
	struct madt_local_apic_nmi nmi = {
	    .type = MADT_LOCAL_APIC_NMI,
	    .length = sizeof(nmi),
	    .processor_uid = 0xff,
	    .flags = MPS_INTI_ACTIVE_HIGH | MPS_INTI_EDGE,
	    .lint = 1,
	};
	size_t off = sizeof(madt);

	header_init(&madt.header, "APIC", (uint32_t)madt_size(nr_cpus), 5);
	memcpy(table, &madt, sizeof(madt));
	for (int i = 0; i < nr_cpus; i++) {
		struct madt_local_apic lapic = {
		    .type = MADT_LOCAL_APIC,
		    .length = sizeof(lapic),
		    .processor_uid = (uint8_t)i,
		    .apic_id = (uint8_t)i,
		    .flags = MADT_LAPIC_ENABLED,
		};

		memcpy(table + off, &lapic, sizeof(lapic));
		off += sizeof(lapic);
	}
	memcpy(table + off, &ioapic, sizeof(ioapic));
	off += sizeof(ioapic);
	memcpy(table + off, &nmi, sizeof(nmi));
}

/* The tables other than the RSDP, one blob from the XSDT on, as if the blob started at guest
 * address `base`; with the RSDP that points at the XSDT. Fills `out` (the loader's view: where
 * pointers and checksums are). 0, or -EINVAL, -ENOMEM after one logged line. */
static int build(const struct acpi_config *cfg, uint64_t base, struct acpi_blobs *out)
{
	size_t xsdt_off, fadt_off, madt_off, mcfg_off, dsdt_off, total;
	int nr_xsdt = cfg->pci ? 3 : 2;
	struct acpi_rsdp rsdp = {.revision = 2, .length = sizeof(rsdp)};
	struct acpi_xsdt xsdt = {0};
	struct acpi_fadt fadt = {0};
	struct acpi_table_header dsdt_header = {0};
	struct aml dsdt;
	uint8_t *buf;
	int err;

	memset(out, 0, sizeof(*out));
	err = config_check(cfg);
	if (err)
		return err;

	aml_init(&dsdt);
	err = dsdt_build(&dsdt, cfg);
	if (err) {
		log_error("acpi: building the DSDT: %s", strerror(-err));
		aml_free(&dsdt);
		return err;
	}

	xsdt_off = 0;
	fadt_off = align_up(xsdt_off + sizeof(xsdt));
	madt_off = align_up(fadt_off + sizeof(fadt));
	mcfg_off = align_up(madt_off + madt_size(cfg->nr_cpus));
	dsdt_off = cfg->pci ? align_up(mcfg_off + sizeof(struct acpi_mcfg)) : mcfg_off;
	total = dsdt_off + sizeof(dsdt_header) + dsdt.len;
	buf = calloc(1, total);
	if (!buf) {
		log_error("acpi: out of memory for %zu bytes of tables", total);
		aml_free(&dsdt);
		return -ENOMEM;
	}

	header_init(&dsdt_header, "DSDT", (uint32_t)(sizeof(dsdt_header) + dsdt.len), 2);
	memcpy(buf + dsdt_off, &dsdt_header, sizeof(dsdt_header));
	memcpy(buf + dsdt_off + sizeof(dsdt_header), dsdt.buf, dsdt.len);
	table_seal(buf + dsdt_off);
	aml_free(&dsdt);

	madt_fill(buf + madt_off, cfg->nr_cpus);
	table_seal(buf + madt_off);

	fadt_fill(&fadt, base + dsdt_off);
	memcpy(buf + fadt_off, &fadt, sizeof(fadt));
	table_seal(buf + fadt_off);

	if (cfg->pci) {
		struct acpi_mcfg mcfg = {
		    .base = cfg->pci->ecam_base,
		    .segment = 0,
		    .start_bus = 0,
		    .end_bus = (uint8_t)((cfg->pci->ecam_size >> 20) - 1),
		};

		header_init(&mcfg.header, "MCFG", sizeof(mcfg), 1);
		memcpy(buf + mcfg_off, &mcfg, sizeof(mcfg));
		table_seal(buf + mcfg_off);
	}

	/* Only as many entries as there are tables: the length says how many. */
	header_init(&xsdt.header, "XSDT", (uint32_t)(sizeof(xsdt.header) + 8 * nr_xsdt), 1);
	xsdt.entry[0] = base + fadt_off;
	xsdt.entry[1] = base + madt_off;
	xsdt.entry[2] = base + mcfg_off;
	memcpy(buf + xsdt_off, &xsdt, sizeof(xsdt.header) + 8 * (size_t)nr_xsdt);
	table_seal(buf + xsdt_off);

	/* No RSDT: revision 2 guests use the XSDT. */
	memcpy(rsdp.signature, "RSD PTR ", 8);
	memcpy(rsdp.oem_id, ACPI_OEM_ID, 6);
	rsdp.xsdt_address = base + xsdt_off;
	rsdp.checksum = checksum(&rsdp, offsetof(struct acpi_rsdp, length));
	rsdp.extended_checksum = checksum(&rsdp, sizeof(rsdp));
	memcpy(out->rsdp, &rsdp, sizeof(rsdp));

	out->tables = buf;
	out->tables_len = (uint32_t)total;
	for (int i = 0; i < nr_xsdt; i++)
		out->pointers[out->nr_pointers++] = (struct acpi_blob_pointer){
		    .offset = (uint32_t)(xsdt_off + offsetof(struct acpi_xsdt, entry) + 8 * i),
		    .size = 8};
	out->pointers[out->nr_pointers++] = (struct acpi_blob_pointer){
	    .offset = (uint32_t)(fadt_off + offsetof(struct acpi_fadt, dsdt)), .size = 4};
	out->pointers[out->nr_pointers++] = (struct acpi_blob_pointer){
	    .offset = (uint32_t)(fadt_off + offsetof(struct acpi_fadt, x_dsdt)), .size = 8};
	out->tables_at[out->nr_tables++] = (uint32_t)xsdt_off;
	out->tables_at[out->nr_tables++] = (uint32_t)fadt_off;
	out->tables_at[out->nr_tables++] = (uint32_t)madt_off;
	if (cfg->pci)
		out->tables_at[out->nr_tables++] = (uint32_t)mcfg_off;
	out->tables_at[out->nr_tables++] = (uint32_t)dsdt_off;
	return 0;
}

int acpi_build_blobs(const struct acpi_config *cfg, struct acpi_blobs *out)
{
	return build(cfg, 0, out);
}

void acpi_blobs_free(struct acpi_blobs *b)
{
	free(b->tables);
	b->tables = NULL;
}

uint32_t acpi_table_length(const struct acpi_blobs *b, uint32_t offset)
{
	uint32_t len;

	memcpy(&len, b->tables + offset + offsetof(struct acpi_table_header, length), 4);
	return len;
}

int acpi_build_tables_at(const struct guest_mem *mem, const struct acpi_config *cfg, uint64_t start,
			 uint64_t end, uint64_t *rsdp_addr)
{
	uint64_t tables = start + align_up(sizeof(struct acpi_rsdp));
	struct acpi_blobs b;
	int err;

	if (start % ACPI_TABLE_ALIGN || end < start || end > (1ULL << 32)) {
		log_error("acpi: table area [0x%llx, 0x%llx) is not an aligned range below 4 GiB",
			  (unsigned long long)start, (unsigned long long)end);
		return -EINVAL;
	}
	err = build(cfg, tables, &b);
	if (err)
		return err;
	if (b.tables_len > end - tables) {
		log_error("acpi: tables need %llu bytes, [0x%llx, 0x%llx) holds %llu",
			  (unsigned long long)(tables - start + b.tables_len),
			  (unsigned long long)start, (unsigned long long)end,
			  (unsigned long long)(end - start));
		acpi_blobs_free(&b);
		return -ENOSPC;
	}
	err = guest_mem_write(mem, tables, b.tables, b.tables_len);
	if (!err)
		err = guest_mem_write(mem, start, b.rsdp, sizeof(b.rsdp));
	acpi_blobs_free(&b);
	if (err) {
		log_error("acpi: tables at [0x%llx, 0x%llx) are not in guest RAM",
			  (unsigned long long)start, (unsigned long long)(tables + b.tables_len));
		return err;
	}
	*rsdp_addr = start;
	return 0;
}

int acpi_build_tables(const struct guest_mem *mem, const struct acpi_config *cfg,
		      uint64_t *rsdp_addr)
{
	return acpi_build_tables_at(mem, cfg, X86_ACPI_START, X86_ACPI_END, rsdp_addr);
}
