#include "arch/arm64/fdt.h"
#include "arch/arm64/layout.h"
#include "devices/fw_cfg.h"
#include "devices/pl061.h"
#include "devices/vmgenid.h"
#include "virtio/virtio.h"

#include <errno.h>
#include <libfdt.h>
#include <stdio.h>
#include <string.h>

/* include/dt-bindings/interrupt-controller/arm-gic.h and irq.h */
#define GIC_SPI			 0
#define GIC_PPI			 1
#define IRQ_TYPE_EDGE_RISING	 1
#define IRQ_TYPE_LEVEL_HIGH	 4
#define GICV2_PPI_CPU_MASK_SHIFT 8

#define PHANDLE_GIC	 1
#define PHANDLE_APB_PCLK 2
#define PHANDLE_GPIO	 3
#define PHANDLE_ITS	 4

/* The PCI bus binding's phys.hi cell (IEEE 1275 PCI bus binding): space code in bits 24-25. */
#define PCI_SPACE_MEM32	  0x02000000u
#define PCI_ECAM_BUS_SIZE 0x100000ULL /* 32 devices x 8 functions x 4 KiB */
#define PCI_MAX_RID	  0x10000u

uint64_t arm64_mpidr_affinity(uint64_t mpidr)
{
	return mpidr & 0xff00ffffffULL; /* Aff3 [39:32], Aff2..Aff0 [23:0] */
}

/* The build stops at the first libfdt error; `err` keeps it. */
struct fdt_writer {
	void *fdt;
	int err;
};

static void begin(struct fdt_writer *w, const char *name)
{
	if (!w->err)
		w->err = fdt_begin_node(w->fdt, name);
}

static void end(struct fdt_writer *w)
{
	if (!w->err)
		w->err = fdt_end_node(w->fdt);
}

static void prop(struct fdt_writer *w, const char *name, const void *val, int len)
{
	if (!w->err)
		w->err = fdt_property(w->fdt, name, val, len);
}

static void prop_str(struct fdt_writer *w, const char *name, const char *val)
{
	if (!w->err)
		w->err = fdt_property_string(w->fdt, name, val);
}

static void prop_u32(struct fdt_writer *w, const char *name, uint32_t val)
{
	if (!w->err)
		w->err = fdt_property_cell(w->fdt, name, val);
}

static void prop_u64(struct fdt_writer *w, const char *name, uint64_t val)
{
	if (!w->err)
		w->err = fdt_property_u64(w->fdt, name, val);
}

static void prop_empty(struct fdt_writer *w, const char *name)
{
	prop(w, name, NULL, 0);
}

/* A list of cells; 64-bit values take two (#address-cells = #size-cells = 2 everywhere). */
static void prop_cells(struct fdt_writer *w, const char *name, const uint32_t *cells, int n)
{
	fdt32_t be[16];

	for (int i = 0; i < n && i < 16; i++)
		be[i] = cpu_to_fdt32(cells[i]);
	prop(w, name, be, n * (int)sizeof(fdt32_t));
}

static void prop_reg(struct fdt_writer *w, const uint64_t *pairs, int n)
{
	uint32_t cells[8];

	for (int i = 0; i < n * 2 && i < 4; i++) {
		cells[2 * i] = (uint32_t)(pairs[i] >> 32);
		cells[2 * i + 1] = (uint32_t)pairs[i];
	}
	prop_cells(w, "reg", cells, n * 4);
}

/* A string list ("a\0b\0"): `len` counts every NUL. */
static void prop_strs(struct fdt_writer *w, const char *name, const char *val, int len)
{
	prop(w, name, val, len);
}

static void node_cpus(struct fdt_writer *w, const struct arm64_fdt_config *c)
{
	char name[32];

	begin(w, "cpus");
	prop_u32(w, "#address-cells", 2);
	prop_u32(w, "#size-cells", 0);
	for (int i = 0; i < c->nr_cpus; i++) {
		uint64_t aff = arm64_mpidr_affinity(c->mpidr[i]);
		uint32_t reg[2] = {(uint32_t)(aff >> 32), (uint32_t)aff};

		snprintf(name, sizeof(name), "cpu@%llx", (unsigned long long)aff);
		begin(w, name);
		prop_str(w, "device_type", "cpu");
		prop_str(w, "compatible", "arm,arm-v8");
		prop_str(w, "enable-method", "psci");
		prop_cells(w, "reg", reg, 2);
		end(w);
	}
	end(w);
}

static void node_gic(struct fdt_writer *w, const struct arm64_fdt_config *c)
{
	char name[32];
	uint64_t reg[4];

	snprintf(name, sizeof(name), "intc@%llx", ARM64_GIC_DIST_BASE);
	begin(w, name);
	reg[0] = ARM64_GIC_DIST_BASE;
	reg[1] = ARM64_GIC_DIST_SIZE;
	if (c->gic == ARM64_GICV3) {
		prop_str(w, "compatible", "arm,gic-v3");
		reg[2] = ARM64_GIC_REDIST_BASE;
		reg[3] = ARM64_GIC_REDIST_STRIDE * (uint64_t)c->nr_cpus;
	} else {
		prop_str(w, "compatible", "arm,cortex-a15-gic");
		reg[2] = ARM64_GIC_CPU_BASE;
		reg[3] = ARM64_GIC_CPU_SIZE;
	}
	prop_reg(w, reg, 2);
	prop_u32(w, "#interrupt-cells", 3);
	prop_empty(w, "interrupt-controller");
	prop_u32(w, "phandle", PHANDLE_GIC);
	if (c->its_base) {
		/* The ITS is a child of the GIC node, in the parent's address space. */
		uint64_t its_reg[2] = {c->its_base, ARM64_GIC_ITS_SIZE};

		prop_u32(w, "#address-cells", 2);
		prop_u32(w, "#size-cells", 2);
		prop_empty(w, "ranges");
		snprintf(name, sizeof(name), "msi-controller@%llx",
			 (unsigned long long)c->its_base);
		begin(w, name);
		prop_str(w, "compatible", "arm,gic-v3-its");
		prop_reg(w, its_reg, 1);
		prop_empty(w, "msi-controller");
		prop_u32(w, "#msi-cells", 1);
		prop_u32(w, "phandle", PHANDLE_ITS);
		end(w);
	}
	end(w);
}

/* PPI flags: GICv2's binding also names the CPUs the PPI is wired to. */
static uint32_t ppi_flags(const struct arm64_fdt_config *c)
{
	uint32_t flags = IRQ_TYPE_LEVEL_HIGH;

	if (c->gic == ARM64_GICV2)
		flags |= ((1u << c->nr_cpus) - 1) << GICV2_PPI_CPU_MASK_SHIFT;
	return flags;
}

static void node_timer(struct fdt_writer *w, const struct arm64_fdt_config *c)
{
	uint32_t f = ppi_flags(c);
	uint32_t irqs[12] = {
	    GIC_PPI, ARM64_TIMER_PPI_SEC_PHYS, f, GIC_PPI, ARM64_TIMER_PPI_PHYS, f,
	    GIC_PPI, ARM64_TIMER_PPI_VIRT,     f, GIC_PPI, ARM64_TIMER_PPI_HYP,	 f,
	};
	static const char compat[] = "arm,armv8-timer";

	begin(w, "timer");
	prop_strs(w, "compatible", compat, sizeof(compat));
	prop_cells(w, "interrupts", irqs, 12);
	prop_empty(w, "always-on");
	end(w);
}

static void node_pmu(struct fdt_writer *w, const struct arm64_fdt_config *c)
{
	uint32_t irq[3] = {GIC_PPI, ARM64_PMU_PPI, ppi_flags(c)};

	begin(w, "pmu");
	prop_str(w, "compatible", "arm,armv8-pmuv3");
	prop_cells(w, "interrupts", irq, 3);
	end(w);
}

static void node_psci(struct fdt_writer *w)
{
	static const char compat[] = "arm,psci-0.2\0arm,psci";

	begin(w, "psci");
	prop_strs(w, "compatible", compat, sizeof(compat));
	prop_str(w, "method", "hvc");
	end(w);
}

static void node_uart(struct fdt_writer *w, const struct arm64_fdt_config *c, const char *name)
{
	uint64_t reg[2] = {c->uart_base, ARM64_UART_SIZE};
	uint32_t irq[3] = {GIC_SPI, c->uart_spi, IRQ_TYPE_LEVEL_HIGH};

	begin(w, name);
	prop_str(w, "compatible", "ns16550a");
	prop_reg(w, reg, 1);
	prop_cells(w, "interrupts", irq, 3);
	prop_u32(w, "clock-frequency", ARM64_UART_CLOCK);
	prop_u32(w, "reg-shift", 0);
	prop_u32(w, "reg-io-width", 1);
	end(w);
}

/* The PL061 is an AMBA PrimeCell: Linux's AMBA bus reads its ID registers only after enabling
 * the clock named apb_pclk, so a fixed clock stands for the bus clock. */
static void node_gpio(struct fdt_writer *w, const struct arm64_fdt_config *c)
{
	static const char compat[] = "arm,pl061\0arm,primecell";
	uint64_t reg[2] = {c->gpio_base, PL061_SIZE};
	uint32_t irq[3] = {GIC_SPI, c->gpio_spi, IRQ_TYPE_LEVEL_HIGH};
	char name[32];

	begin(w, "apb-pclk");
	prop_str(w, "compatible", "fixed-clock");
	prop_u32(w, "#clock-cells", 0);
	prop_u32(w, "clock-frequency", ARM64_GPIO_CLOCK);
	prop_str(w, "clock-output-names", "clk24mhz");
	prop_u32(w, "phandle", PHANDLE_APB_PCLK);
	end(w);

	snprintf(name, sizeof(name), "pl061@%llx", (unsigned long long)c->gpio_base);
	begin(w, name);
	prop_strs(w, "compatible", compat, sizeof(compat));
	prop_reg(w, reg, 1);
	prop_cells(w, "interrupts", irq, 3);
	prop_empty(w, "gpio-controller");
	prop_u32(w, "#gpio-cells", 2);
	prop_u32(w, "clocks", PHANDLE_APB_PCLK);
	prop_str(w, "clock-names", "apb_pclk");
	prop_u32(w, "phandle", PHANDLE_GPIO);
	end(w);
}

static void node_key(struct fdt_writer *w, const char *name, const char *label, uint32_t line,
		     uint32_t code)
{
	uint32_t gpios[3] = {PHANDLE_GPIO, line, 0 /* GPIO_ACTIVE_HIGH */};

	begin(w, name);
	prop_str(w, "label", label);
	prop_u32(w, "linux,code", code);
	prop_cells(w, "gpios", gpios, 3);
	end(w);
}

/* Three buttons whose key codes Linux's VT keyboard handler turns into ctrl_alt_del() when they
 * are down together, Delete last. */
static void node_gpio_keys(struct fdt_writer *w)
{
	begin(w, "gpio-keys");
	prop_str(w, "compatible", "gpio-keys");
	node_key(w, "ctrl", "Ctrl", ARM64_GPIO_LINE_CTRL, ARM64_KEY_LEFTCTRL);
	node_key(w, "alt", "Alt", ARM64_GPIO_LINE_ALT, ARM64_KEY_LEFTALT);
	node_key(w, "delete", "Delete", ARM64_GPIO_LINE_DELETE, ARM64_KEY_DELETE);
	end(w);
}

static void node_virtio(struct fdt_writer *w, const struct arm64_fdt_virtio *v)
{
	uint64_t reg[2] = {v->base, VIRTIO_MMIO_SIZE};
	uint32_t irq[3] = {GIC_SPI, v->spi, IRQ_TYPE_EDGE_RISING};
	char name[40];

	snprintf(name, sizeof(name), "virtio_mmio@%llx", (unsigned long long)v->base);
	begin(w, name);
	prop_str(w, "compatible", "virtio,mmio");
	prop_reg(w, reg, 1);
	prop_cells(w, "interrupts", irq, 3);
	prop_empty(w, "dma-coherent");
	end(w);
}

/* Linux's pci-host-generic: the ECAM in reg, the windows in ranges, the buses in bus-range;
 * every requester id is a device id at the ITS (msi-map). Devices raise MSI-X only (their
 * Interrupt Pin is 0), so there is no interrupt-map. */
static void node_pci(struct fdt_writer *w, const struct arm64_fdt_pci *pci)
{
	uint64_t reg[2] = {pci->ecam_base, (uint64_t)(pci->bus_end + 1) * PCI_ECAM_BUS_SIZE};
	uint32_t bus_range[2] = {0, pci->bus_end};
	/* child (phys.hi, phys.mid, phys.lo), parent (2 cells), size (2 cells) */
	uint32_t ranges[7] = {
	    PCI_SPACE_MEM32,	      (uint32_t)(pci->mmio_base >> 32),
	    (uint32_t)pci->mmio_base, (uint32_t)(pci->mmio_base >> 32),
	    (uint32_t)pci->mmio_base, (uint32_t)(pci->mmio_size >> 32),
	    (uint32_t)pci->mmio_size,
	};
	uint32_t msi_map[4] = {0, PHANDLE_ITS, 0, PCI_MAX_RID};
	char name[32];

	snprintf(name, sizeof(name), "pcie@%llx", (unsigned long long)pci->ecam_base);
	begin(w, name);
	prop_str(w, "compatible", "pci-host-ecam-generic");
	prop_str(w, "device_type", "pci");
	prop_u32(w, "#address-cells", 3);
	prop_u32(w, "#size-cells", 2);
	prop_reg(w, reg, 1);
	prop_cells(w, "bus-range", bus_range, 2);
	prop_cells(w, "ranges", ranges, 7);
	prop_cells(w, "msi-map", msi_map, 4);
	prop_u32(w, "linux,pci-domain", 0);
	prop_empty(w, "dma-coherent");
	end(w);
}

/* Linux's binding (Documentation/devicetree/bindings/rng/microsoft,vmgenid.yaml): the ID's
 * bytes in reg, one interrupt. */
static void node_vmgenid(struct fdt_writer *w, const struct arm64_fdt_config *c)
{
	uint64_t reg[2] = {c->vmgenid_base, VMGENID_SIZE};
	uint32_t irq[3] = {GIC_SPI, c->vmgenid_spi, IRQ_TYPE_EDGE_RISING};
	char name[40];

	snprintf(name, sizeof(name), "vmgenid@%llx", (unsigned long long)c->vmgenid_base);
	begin(w, name);
	prop_str(w, "compatible", "microsoft,vmgenid");
	prop_reg(w, reg, 1);
	prop_cells(w, "interrupts", irq, 3);
	end(w);
}

/* The VMGenID's page lies in RAM (where /memreserve/ means something) and is whole. */
static bool vmgenid_valid(const struct arm64_fdt_config *c)
{
	if (!c->vmgenid_base)
		return true;
	return !(c->vmgenid_base & (ARM64_VMGENID_PAGE - 1)) && c->vmgenid_base >= c->ram_base &&
	       c->ram_size >= ARM64_VMGENID_PAGE &&
	       c->vmgenid_base - c->ram_base <= c->ram_size - ARM64_VMGENID_PAGE;
}

/* What the PCI description needs: an ITS on a GICv3, a 32-bit window, whole buses. */
static bool pci_valid(const struct arm64_fdt_config *c)
{
	const struct arm64_fdt_pci *pci = c->pci;

	if (!pci)
		return true;
	return c->its_base && c->gic == ARM64_GICV3 && pci->bus_end <= 255 && pci->mmio_size &&
	       pci->mmio_base + pci->mmio_size <= 0x100000000ULL &&
	       pci->mmio_base + pci->mmio_size > pci->mmio_base;
}

/* QEMU's binding (qemu,fw-cfg-mmio): the registers, and DMA that sees memory as the CPUs do. */
static void node_fw_cfg(struct fdt_writer *w, uint64_t base)
{
	uint64_t reg[2] = {base, FW_CFG_MMIO_LEN};
	char name[40];

	snprintf(name, sizeof(name), "fw-cfg@%llx", (unsigned long long)base);
	begin(w, name);
	prop_str(w, "compatible", "qemu,fw-cfg-mmio");
	prop_reg(w, reg, 1);
	prop_empty(w, "dma-coherent");
	end(w);
}

int arm64_fdt_build(const struct arm64_fdt_config *c, void *buf, size_t size)
{
	struct fdt_writer w = {.fdt = buf};
	uint64_t mem[2] = {c->ram_base, c->ram_size};
	char uart[32], uart_path[40], name[32];

	if (c->nr_cpus < 1 || !c->mpidr || (c->gic == ARM64_GICV2 && c->nr_cpus > 8) ||
	    (c->gic != ARM64_GICV2 && c->gic != ARM64_GICV3) || size > (size_t)INT32_MAX ||
	    c->initrd_end < c->initrd_start || (c->its_base && c->gic != ARM64_GICV3) ||
	    !pci_valid(c) || !vmgenid_valid(c))
		return -EINVAL;
	snprintf(uart, sizeof(uart), "serial@%llx", (unsigned long long)c->uart_base);
	snprintf(uart_path, sizeof(uart_path), "/%s", uart);

	w.err = fdt_create(buf, (int)size);
	if (!w.err && c->vmgenid_base)
		w.err = fdt_add_reservemap_entry(buf, c->vmgenid_base, ARM64_VMGENID_PAGE);
	if (!w.err)
		w.err = fdt_finish_reservemap(buf);
	begin(&w, "");
	prop_str(&w, "compatible", "linux,dummy-virt");
	prop_str(&w, "model", "skiff");
	prop_u32(&w, "#address-cells", 2);
	prop_u32(&w, "#size-cells", 2);
	prop_u32(&w, "interrupt-parent", PHANDLE_GIC);

	begin(&w, "chosen");
	if (c->bootargs)
		prop_str(&w, "bootargs", c->bootargs);
	if (c->initrd_end > c->initrd_start) {
		prop_u64(&w, "linux,initrd-start", c->initrd_start);
		prop_u64(&w, "linux,initrd-end", c->initrd_end);
	}
	prop_str(&w, "stdout-path", uart_path);
	end(&w);

	snprintf(name, sizeof(name), "memory@%llx", (unsigned long long)c->ram_base);
	begin(&w, name);
	prop_str(&w, "device_type", "memory");
	prop_reg(&w, mem, 1);
	end(&w);

	node_cpus(&w, c);
	node_psci(&w);
	node_gic(&w, c);
	node_timer(&w, c);
	if (c->pmu)
		node_pmu(&w, c);
	node_uart(&w, c, uart);
	if (c->gpio_base) {
		node_gpio(&w, c);
		node_gpio_keys(&w);
	}
	if (c->fw_cfg_base)
		node_fw_cfg(&w, c->fw_cfg_base);
	for (int i = 0; i < c->nr_virtio; i++)
		node_virtio(&w, &c->virtio[i]);
	if (c->pci)
		node_pci(&w, c->pci);
	if (c->vmgenid_base)
		node_vmgenid(&w, c);
	end(&w);
	if (!w.err)
		w.err = fdt_finish(buf);
	if (w.err)
		return w.err == -FDT_ERR_NOSPACE ? -ENOSPC : -EINVAL;
	return (int)fdt_totalsize(buf);
}
