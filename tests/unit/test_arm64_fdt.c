/* The arm64 device tree: the blob arm64_fdt_build() writes is parsed back with libfdt (and,
 * when dtc is installed, decompiled by it) and every node Linux relies on is checked: memory,
 * cpus with PSCI and MPIDR-derived reg, the PSCI node, GICv3 and GICv2, the timer's four PPIs,
 * the PMU, the UART (what 8250_of and earlycon read), the PL061 with its gpio-keys buttons,
 * virtio-mmio devices, /chosen, and for PCI the GICv3 ITS below the GIC and the
 * pci-host-ecam-generic bridge with its msi-map to the ITS (what pci-host-generic and
 * of_msi_map_id read), which dtc must take without a warning. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <libfdt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "arch/arm64/fdt.h"
#include "arch/arm64/layout.h"
#include "devices/fw_cfg.h"
#include "virtio/virtio.h"

#define BLOB_SIZE 0x10000

static const uint64_t mpidr2[] = {0x80000000, 0x80000001};
static const struct arm64_fdt_virtio virtio2[] = {
    {.base = ARM64_VIRTIO_MMIO_START, .spi = ARM64_VIRTIO_SPI_BASE},
    {.base = ARM64_VIRTIO_MMIO_START + ARM64_VIRTIO_MMIO_STRIDE, .spi = ARM64_VIRTIO_SPI_BASE + 1},
};

static struct arm64_fdt_config base_config(void)
{
	return (struct arm64_fdt_config){
	    .ram_base = ARM64_RAM_BASE,
	    .ram_size = 512ULL << 20,
	    .nr_cpus = 2,
	    .mpidr = mpidr2,
	    .gic = ARM64_GICV3,
	    .pmu = true,
	    .uart_base = ARM64_UART_BASE,
	    .uart_spi = ARM64_UART_SPI,
	    .gpio_base = ARM64_GPIO_BASE,
	    .gpio_spi = ARM64_GPIO_SPI,
	    .fw_cfg_base = ARM64_FW_CFG_BASE,
	    .virtio = virtio2,
	    .nr_virtio = 2,
	    .bootargs = "console=ttyS0 earlycon panic=-1",
	    .initrd_start = 0x9fc00000,
	    .initrd_end = 0x9fd00000,
	};
}

static void *build(const struct arm64_fdt_config *c)
{
	void *blob = calloc(1, BLOB_SIZE);
	int len;

	assert_non_null(blob);
	len = arm64_fdt_build(c, blob, BLOB_SIZE);
	assert_true(len > 0);
	assert_int_equal(fdt_check_header(blob), 0);
	assert_int_equal(fdt_totalsize(blob), (uint32_t)len);
	return blob;
}

static int node(const void *fdt, const char *path)
{
	int off = fdt_path_offset(fdt, path);

	if (off < 0)
		fail_msg("no node %s", path);
	return off;
}

static const void *prop(const void *fdt, int off, const char *name, int *len)
{
	const void *p = fdt_getprop(fdt, off, name, len);

	if (!p)
		fail_msg("no property %s", name);
	return p;
}

static void assert_str(const void *fdt, const char *path, const char *name, const char *want)
{
	int len;
	const char *p = prop(fdt, node(fdt, path), name, &len);

	assert_int_equal(len, (int)strlen(want) + 1);
	assert_string_equal(p, want);
}

static uint32_t cell(const void *p, int i)
{
	return fdt32_to_cpu(((const fdt32_t *)p)[i]);
}

static uint64_t cells64(const void *p, int i)
{
	return (uint64_t)cell(p, i) << 32 | cell(p, i + 1);
}

static void assert_u32(const void *fdt, const char *path, const char *name, uint32_t want)
{
	int len;
	const void *p = prop(fdt, node(fdt, path), name, &len);

	assert_int_equal(len, 4);
	assert_int_equal(cell(p, 0), want);
}

static void test_root_and_memory(void **state)
{
	struct arm64_fdt_config c = base_config();
	void *fdt = build(&c);
	int len, gic;
	const void *reg;

	assert_u32(fdt, "/", "#address-cells", 2);
	assert_u32(fdt, "/", "#size-cells", 2);
	gic = node(fdt, "/intc@8000000");
	assert_u32(fdt, "/", "interrupt-parent", fdt_get_phandle(fdt, gic));
	assert_str(fdt, "/memory@80000000", "device_type", "memory");
	reg = prop(fdt, node(fdt, "/memory@80000000"), "reg", &len);
	assert_int_equal(len, 16);
	assert_int_equal(cells64(reg, 0), ARM64_RAM_BASE);
	assert_int_equal(cells64(reg, 2), 512ULL << 20);
	free(fdt);
}

static void test_cpus_and_psci(void **state)
{
	static const uint64_t mpidr[] = {0x80000000, 0x80000001, 0x80000100};
	struct arm64_fdt_config c = base_config();
	void *fdt;
	int len, cpus, n = 0, off;
	const void *reg;

	c.mpidr = mpidr;
	c.nr_cpus = 3;
	fdt = build(&c);
	cpus = node(fdt, "/cpus");
	assert_u32(fdt, "/cpus", "#address-cells", 2);
	assert_u32(fdt, "/cpus", "#size-cells", 0);
	fdt_for_each_subnode(off, fdt, cpus)
	{
		assert_string_equal(prop(fdt, off, "device_type", &len), "cpu");
		assert_string_equal(prop(fdt, off, "enable-method", &len), "psci");
		reg = prop(fdt, off, "reg", &len);
		assert_int_equal(len, 8);
		/* reg is the MPIDR's affinity: bit 31 (RES1) is not part of it. */
		assert_int_equal(cells64(reg, 0), mpidr[n] & 0xffffff);
		n++;
	}
	assert_int_equal(n, 3);
	node(fdt, "/cpus/cpu@100");
	assert_str(fdt, "/psci", "method", "hvc");
	off = node(fdt, "/psci");
	assert_int_equal(fdt_node_check_compatible(fdt, off, "arm,psci-0.2"), 0);
	assert_int_equal(fdt_node_check_compatible(fdt, off, "arm,psci"), 0);
	free(fdt);
}

static void test_gicv3(void **state)
{
	struct arm64_fdt_config c = base_config();
	void *fdt = build(&c);
	int len, off = node(fdt, "/intc@8000000");
	const void *reg;

	assert_int_equal(fdt_node_check_compatible(fdt, off, "arm,gic-v3"), 0);
	assert_non_null(fdt_getprop(fdt, off, "interrupt-controller", &len));
	assert_int_equal(len, 0);
	assert_u32(fdt, "/intc@8000000", "#interrupt-cells", 3);
	reg = prop(fdt, off, "reg", &len);
	assert_int_equal(len, 32);
	assert_int_equal(cells64(reg, 0), ARM64_GIC_DIST_BASE);
	assert_int_equal(cells64(reg, 2), ARM64_GIC_DIST_SIZE);
	assert_int_equal(cells64(reg, 4), ARM64_GIC_REDIST_BASE);
	/* One 128 KiB redistributor per vCPU. */
	assert_int_equal(cells64(reg, 6), 2 * 0x20000);
	free(fdt);
}

static void test_gicv2_and_ppi_cpu_mask(void **state)
{
	struct arm64_fdt_config c = base_config();
	void *fdt;
	int len, off;
	const void *p;

	c.gic = ARM64_GICV2;
	fdt = build(&c);
	off = node(fdt, "/intc@8000000");
	assert_int_equal(fdt_node_check_compatible(fdt, off, "arm,cortex-a15-gic"), 0);
	p = prop(fdt, off, "reg", &len);
	assert_int_equal(len, 32);
	assert_int_equal(cells64(p, 4), ARM64_GIC_CPU_BASE);
	assert_int_equal(cells64(p, 6), 0x2000);
	/* GICv2 PPIs name their CPUs: two vCPUs -> mask 0x3 in bits 8..15. */
	p = prop(fdt, node(fdt, "/timer"), "interrupts", &len);
	assert_int_equal(cell(p, 2), 0x304);
	free(fdt);

	c.nr_cpus = 9;
	fdt = calloc(1, BLOB_SIZE);
	assert_int_equal(arm64_fdt_build(&c, fdt, BLOB_SIZE), -EINVAL);
	free(fdt);
}

static void test_timer_and_pmu(void **state)
{
	static const uint32_t ppis[4] = {13, 14, 11, 10};
	struct arm64_fdt_config c = base_config();
	void *fdt = build(&c);
	int len, off = node(fdt, "/timer");
	const void *p;

	assert_int_equal(fdt_node_check_compatible(fdt, off, "arm,armv8-timer"), 0);
	p = prop(fdt, off, "interrupts", &len);
	assert_int_equal(len, 4 * 3 * 4);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(cell(p, 3 * i), 1); /* GIC_PPI */
		assert_int_equal(cell(p, 3 * i + 1), ppis[i]);
		assert_int_equal(cell(p, 3 * i + 2), 4); /* level high */
	}
	off = node(fdt, "/pmu");
	assert_int_equal(fdt_node_check_compatible(fdt, off, "arm,armv8-pmuv3"), 0);
	p = prop(fdt, off, "interrupts", &len);
	assert_int_equal(cell(p, 1), 7); /* PPI 7 = INTID 23 */
	free(fdt);

	c.pmu = false;
	fdt = build(&c);
	assert_true(fdt_path_offset(fdt, "/pmu") < 0);
	free(fdt);
}

static void test_uart_and_chosen(void **state)
{
	struct arm64_fdt_config c = base_config();
	void *fdt = build(&c);
	int len, off = node(fdt, "/serial@9000000");
	const void *p;
	const char *stdout_path;

	assert_str(fdt, "/serial@9000000", "compatible", "ns16550a");
	p = prop(fdt, off, "reg", &len);
	assert_int_equal(cells64(p, 0), ARM64_UART_BASE);
	p = prop(fdt, off, "interrupts", &len);
	assert_int_equal(len, 12);
	assert_int_equal(cell(p, 0), 0); /* GIC_SPI */
	assert_int_equal(cell(p, 1), ARM64_UART_SPI);
	assert_int_equal(cell(p, 2), 4); /* level high: the 16550's line is a level */
	assert_u32(fdt, "/serial@9000000", "reg-shift", 0);
	assert_u32(fdt, "/serial@9000000", "reg-io-width", 1);
	assert_u32(fdt, "/serial@9000000", "clock-frequency", ARM64_UART_CLOCK);

	assert_str(fdt, "/chosen", "bootargs", "console=ttyS0 earlycon panic=-1");
	/* stdout-path resolves to the UART: what `earlycon` without an argument looks up. */
	stdout_path = prop(fdt, node(fdt, "/chosen"), "stdout-path", &len);
	assert_int_equal(fdt_path_offset(fdt, stdout_path), off);
	p = prop(fdt, node(fdt, "/chosen"), "linux,initrd-start", &len);
	assert_int_equal(len, 8);
	assert_int_equal(cells64(p, 0), 0x9fc00000);
	p = prop(fdt, node(fdt, "/chosen"), "linux,initrd-end", &len);
	assert_int_equal(cells64(p, 0), 0x9fd00000);
	free(fdt);

	/* No initrd, no bootargs: neither property. */
	c.initrd_start = c.initrd_end = 0;
	c.bootargs = NULL;
	fdt = build(&c);
	off = node(fdt, "/chosen");
	assert_null(fdt_getprop(fdt, off, "linux,initrd-start", &len));
	assert_null(fdt_getprop(fdt, off, "bootargs", &len));
	free(fdt);
}

static void test_virtio_nodes(void **state)
{
	struct arm64_fdt_config c = base_config();
	void *fdt = build(&c);
	int len, n = 0, off;

	fdt_for_each_subnode(off, fdt, 0)
	{
		const void *p;

		if (fdt_node_check_compatible(fdt, off, "virtio,mmio") != 0)
			continue;
		p = prop(fdt, off, "reg", &len);
		assert_int_equal(cells64(p, 0), virtio2[n].base);
		assert_int_equal(cells64(p, 2), VIRTIO_MMIO_SIZE);
		p = prop(fdt, off, "interrupts", &len);
		assert_int_equal(cell(p, 0), 0);
		assert_int_equal(cell(p, 1), virtio2[n].spi);
		assert_int_equal(cell(p, 2), 1); /* edge rising */
		assert_non_null(fdt_getprop(fdt, off, "dma-coherent", &len));
		n++;
	}
	assert_int_equal(n, 2);
	node(fdt, "/virtio_mmio@a001000");
	free(fdt);

	c.nr_virtio = 0;
	fdt = build(&c);
	assert_int_equal(fdt_node_offset_by_compatible(fdt, -1, "virtio,mmio"), -FDT_ERR_NOTFOUND);
	free(fdt);
}

/* What Linux's AMBA bus, pl061 and gpio-keys drivers read: the controller with its apb_pclk
 * clock, and three buttons wired to its lines 0-2 with the Ctrl, Alt and Delete key codes. */
static void test_gpio_and_keys(void **state)
{
	static const char compat[] = "arm,pl061\0arm,primecell";
	static const struct {
		const char *path;
		uint32_t line, code;
	} keys[] = {
	    {"/gpio-keys/ctrl", ARM64_GPIO_LINE_CTRL, 29},
	    {"/gpio-keys/alt", ARM64_GPIO_LINE_ALT, 56},
	    {"/gpio-keys/delete", ARM64_GPIO_LINE_DELETE, 111},
	};
	struct arm64_fdt_config c = base_config();
	void *fdt = build(&c);
	int len, off = node(fdt, "/pl061@9010000"), clk = node(fdt, "/apb-pclk");
	const void *p;
	uint32_t gpio_phandle, clk_phandle;

	p = prop(fdt, off, "compatible", &len);
	assert_int_equal(len, (int)sizeof(compat));
	assert_memory_equal(p, compat, sizeof(compat));
	p = prop(fdt, off, "reg", &len);
	assert_int_equal(cells64(p, 0), ARM64_GPIO_BASE);
	assert_int_equal(cells64(p, 2), 0x1000);
	p = prop(fdt, off, "interrupts", &len);
	assert_int_equal(cell(p, 0), 0);
	assert_int_equal(cell(p, 1), ARM64_GPIO_SPI);
	assert_int_equal(cell(p, 2), 4); /* level high */
	assert_non_null(prop(fdt, off, "gpio-controller", &len));
	assert_u32(fdt, "/pl061@9010000", "#gpio-cells", 2);
	assert_str(fdt, "/pl061@9010000", "clock-names", "apb_pclk");
	gpio_phandle = fdt_get_phandle(fdt, off);
	clk_phandle = fdt_get_phandle(fdt, clk);
	assert_int_not_equal(gpio_phandle, 0);
	assert_int_not_equal(clk_phandle, 0);
	assert_u32(fdt, "/pl061@9010000", "clocks", clk_phandle);
	assert_str(fdt, "/apb-pclk", "compatible", "fixed-clock");
	assert_u32(fdt, "/apb-pclk", "#clock-cells", 0);

	assert_str(fdt, "/gpio-keys", "compatible", "gpio-keys");
	for (int i = 0; i < 3; i++) {
		assert_u32(fdt, keys[i].path, "linux,code", keys[i].code);
		p = prop(fdt, node(fdt, keys[i].path), "gpios", &len);
		assert_int_equal(len, 12);
		assert_int_equal(cell(p, 0), gpio_phandle);
		assert_int_equal(cell(p, 1), keys[i].line);
		assert_int_equal(cell(p, 2), 0); /* active high */
	}
	free(fdt);

	c.gpio_base = 0;
	fdt = build(&c);
	assert_true(fdt_path_offset(fdt, "/gpio-keys") < 0);
	assert_int_equal(fdt_node_offset_by_compatible(fdt, -1, "arm,pl061"), -FDT_ERR_NOTFOUND);
	free(fdt);
}

static const struct arm64_fdt_pci pci1 = {
    .ecam_base = ARM64_PCI_ECAM_BASE,
    .bus_end = 0,
    .mmio_base = ARM64_PCI_MMIO_BASE,
    .mmio_size = ARM64_PCI_MMIO_SIZE,
};

static struct arm64_fdt_config pci_config(void)
{
	struct arm64_fdt_config c = base_config();

	c.its_base = ARM64_GIC_ITS_BASE;
	c.pci = &pci1;
	return c;
}

/* The ITS is a child of the GIC node (which then has an address space of its own, the same as
 * its parent's through an empty ranges) and an MSI controller with one cell: the device id. */
static void test_its_node(void **state)
{
	struct arm64_fdt_config c = pci_config();
	void *fdt = build(&c);
	int len, gic = node(fdt, "/intc@8000000"),
		 its = node(fdt, "/intc@8000000/msi-controller@8080000");
	const void *p;

	assert_int_equal(fdt_parent_offset(fdt, its), gic);
	assert_u32(fdt, "/intc@8000000", "#address-cells", 2);
	assert_u32(fdt, "/intc@8000000", "#size-cells", 2);
	p = prop(fdt, gic, "ranges", &len);
	assert_int_equal(len, 0);
	assert_int_equal(fdt_node_check_compatible(fdt, its, "arm,gic-v3-its"), 0);
	assert_non_null(prop(fdt, its, "msi-controller", &len));
	assert_int_equal(len, 0);
	assert_u32(fdt, "/intc@8000000/msi-controller@8080000", "#msi-cells", 1);
	p = prop(fdt, its, "reg", &len);
	assert_int_equal(len, 16);
	assert_int_equal(cells64(p, 0), ARM64_GIC_ITS_BASE);
	assert_int_equal(cells64(p, 2), 0x20000);
	/* 64 KiB aligned, and clear of the distributor and the redistributors. */
	assert_int_equal(ARM64_GIC_ITS_BASE & 0xffff, 0);
	assert_true(ARM64_GIC_ITS_BASE >= ARM64_GIC_DIST_BASE + ARM64_GIC_DIST_SIZE);
	assert_true(ARM64_GIC_ITS_BASE + ARM64_GIC_ITS_SIZE <= ARM64_GIC_REDIST_BASE);
	assert_int_not_equal(fdt_get_phandle(fdt, its), 0);
	free(fdt);

	/* Without an ITS the GIC node is as before: no address space, no child. */
	c = base_config();
	fdt = build(&c);
	gic = node(fdt, "/intc@8000000");
	assert_null(fdt_getprop(fdt, gic, "#address-cells", &len));
	assert_null(fdt_getprop(fdt, gic, "ranges", &len));
	assert_int_equal(fdt_first_subnode(fdt, gic), -FDT_ERR_NOTFOUND);
	assert_int_equal(fdt_node_offset_by_compatible(fdt, -1, "pci-host-ecam-generic"),
			 -FDT_ERR_NOTFOUND);
	free(fdt);
}

/* What drivers/pci/controller/pci-host-common.c and drivers/pci/of.c read. */
static void test_pci_host_node(void **state)
{
	static const struct arm64_fdt_pci pci16 = {
	    .ecam_base = ARM64_PCI_ECAM_BASE,
	    .bus_end = 15,
	    .mmio_base = ARM64_PCI_MMIO_BASE,
	    .mmio_size = ARM64_PCI_MMIO_SIZE,
	};
	struct arm64_fdt_config c = pci_config();
	void *fdt = build(&c);
	int len, off = node(fdt, "/pcie@30000000"), its;
	const void *p;

	assert_int_equal(fdt_node_offset_by_compatible(fdt, -1, "pci-host-ecam-generic"), off);
	assert_str(fdt, "/pcie@30000000", "device_type", "pci");
	assert_u32(fdt, "/pcie@30000000", "#address-cells", 3);
	assert_u32(fdt, "/pcie@30000000", "#size-cells", 2);
	p = prop(fdt, off, "reg", &len);
	assert_int_equal(len, 16);
	assert_int_equal(cells64(p, 0), ARM64_PCI_ECAM_BASE);
	assert_int_equal(cells64(p, 2), 0x100000); /* one bus: 1 MiB of configuration space */
	p = prop(fdt, off, "bus-range", &len);
	assert_int_equal(len, 8);
	assert_int_equal(cell(p, 0), 0);
	assert_int_equal(cell(p, 1), 0);
	/* One window: 32-bit memory space, PCI address = CPU address, below 4 GiB. */
	p = prop(fdt, off, "ranges", &len);
	assert_int_equal(len, 7 * 4);
	assert_int_equal(cell(p, 0), 0x02000000);
	assert_int_equal(cells64(p, 1), ARM64_PCI_MMIO_BASE);
	assert_int_equal(cells64(p, 3), ARM64_PCI_MMIO_BASE);
	assert_int_equal(cells64(p, 5), ARM64_PCI_MMIO_SIZE);
	assert_true(ARM64_PCI_MMIO_BASE + ARM64_PCI_MMIO_SIZE <= 0x100000000ULL);
	/* Every requester id 0..0xffff is the same device id at the ITS. */
	its = node(fdt, "/intc@8000000/msi-controller@8080000");
	p = prop(fdt, off, "msi-map", &len);
	assert_int_equal(len, 16);
	assert_int_equal(cell(p, 0), 0);
	assert_int_equal(cell(p, 1), fdt_get_phandle(fdt, its));
	assert_int_equal(cell(p, 2), 0);
	assert_int_equal(cell(p, 3), 0x10000);
	assert_non_null(prop(fdt, off, "dma-coherent", &len));
	/* MSI-X only: no INTx mapping. */
	assert_null(fdt_getprop(fdt, off, "interrupt-map", &len));
	free(fdt);

	/* The ECAM covers exactly the bus range. */
	c.pci = &pci16;
	fdt = build(&c);
	off = node(fdt, "/pcie@30000000");
	p = prop(fdt, off, "reg", &len);
	assert_int_equal(cells64(p, 2), 16 * 0x100000);
	p = prop(fdt, off, "bus-range", &len);
	assert_int_equal(cell(p, 1), 15);
	free(fdt);
}

/* Windows and address ranges do not overlap each other, the devices or RAM. */
static void test_pci_layout(void **state)
{
	static const uint64_t win[][2] = {
	    {ARM64_GIC_DIST_BASE, ARM64_GIC_DIST_SIZE},
	    {ARM64_GIC_ITS_BASE, ARM64_GIC_ITS_SIZE},
	    {ARM64_GIC_REDIST_BASE, ARM64_GIC_REDIST_END - ARM64_GIC_REDIST_BASE},
	    {ARM64_UART_BASE, ARM64_UART_SIZE},
	    {ARM64_BOOT_TIMER_BASE, 0x1000},
	    {ARM64_GPIO_BASE, 0x1000},
	    {ARM64_VIRTIO_MMIO_START, ARM64_VIRTIO_MMIO_MAX * ARM64_VIRTIO_MMIO_STRIDE},
	    {ARM64_PCI_MMIO_BASE, ARM64_PCI_MMIO_SIZE},
	    {ARM64_PCI_ECAM_BASE, ARM64_PCI_ECAM_SIZE},
	    {ARM64_RAM_BASE, 1ULL << 30},
	};
	size_t n = sizeof(win) / sizeof(win[0]);

	for (size_t i = 0; i < n; i++)
		for (size_t j = i + 1; j < n; j++)
			if (win[i][0] < win[j][0] + win[j][1] && win[j][0] < win[i][0] + win[i][1])
				fail_msg("windows %zu and %zu overlap", i, j);
	/* Room for 256 buses before the next 1 GiB, and still below RAM. */
	assert_int_equal(ARM64_PCI_ECAM_SIZE % 0x100000, 0);
	assert_true(ARM64_PCI_ECAM_BASE + 256 * 0x100000 <= ARM64_RAM_BASE);
}

/* A description that cannot be expressed: PCI without an ITS, an ITS on a GICv2, a window
 * above 4 GiB or empty, more than 256 buses. */
static void test_pci_invalid(void **state)
{
	struct arm64_fdt_pci bad = pci1;
	struct arm64_fdt_config c = pci_config();
	void *fdt = calloc(1, BLOB_SIZE);

	c.its_base = 0;
	assert_int_equal(arm64_fdt_build(&c, fdt, BLOB_SIZE), -EINVAL);
	c = pci_config();
	c.gic = ARM64_GICV2;
	assert_int_equal(arm64_fdt_build(&c, fdt, BLOB_SIZE), -EINVAL);
	c = base_config();
	c.gic = ARM64_GICV2;
	c.its_base = ARM64_GIC_ITS_BASE;
	assert_int_equal(arm64_fdt_build(&c, fdt, BLOB_SIZE), -EINVAL);
	c = pci_config();
	c.pci = &bad;
	bad.mmio_base = 0xf0000000;
	bad.mmio_size = 0x20000000;
	assert_int_equal(arm64_fdt_build(&c, fdt, BLOB_SIZE), -EINVAL);
	bad = pci1;
	bad.mmio_size = 0;
	assert_int_equal(arm64_fdt_build(&c, fdt, BLOB_SIZE), -EINVAL);
	bad = pci1;
	bad.bus_end = 256;
	assert_int_equal(arm64_fdt_build(&c, fdt, BLOB_SIZE), -EINVAL);
	bad = pci1;
	assert_true(arm64_fdt_build(&c, fdt, BLOB_SIZE) > 0);
	free(fdt);
}

static void test_too_small_buffer(void **state)
{
	struct arm64_fdt_config c = base_config();
	void *buf = calloc(1, 256);

	assert_int_equal(arm64_fdt_build(&c, buf, 256), -ENOSPC);
	free(buf);
}

/* Runs dtc on the blob; with `strict`, any line it prints (a warning of its checks: the PCI
 * bridge, unit addresses, reg and ranges formats, interrupt and MSI providers) fails. */
static void dtc_check(const struct arm64_fdt_config *c, bool strict)
{
	void *fdt = build(c);
	char path[] = "/tmp/skiff-test-fdt-XXXXXX", cmd[320], out[512];
	int fd = mkstemp(path);
	FILE *f;
	size_t n;

	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_int_equal(fwrite(fdt, fdt_totalsize(fdt), 1, f), 1);
	fclose(f);
	free(fdt);
	if (system("command -v dtc >/dev/null 2>&1") != 0) {
		unlink(path);
		skip();
	}
	if (!strict) {
		snprintf(cmd, sizeof(cmd), "dtc -q -I dtb -O dts -o /dev/null %s", path);
		assert_int_equal(system(cmd), 0);
		unlink(path);
		return;
	}
	snprintf(cmd, sizeof(cmd), "dtc -I dtb -O dts -o /dev/null %s 2>&1; echo rc=$?", path);
	f = popen(cmd, "r");
	assert_non_null(f);
	n = fread(out, 1, sizeof(out) - 1, f);
	out[n] = 0;
	pclose(f);
	unlink(path);
	if (strcmp(out, "rc=0\n") != 0)
		fail_msg("dtc: %s", out);
}

/* fw_cfg as QEMU's virt describes it: Linux's qemu_fw_cfg and EDK2 match "qemu,fw-cfg-mmio". */
static void test_fw_cfg_node(void **state)
{
	struct arm64_fdt_config c = base_config();
	void *fdt = build(&c);
	int len, off = node(fdt, "/fw-cfg@9020000");
	const void *p = prop(fdt, off, "reg", &len);

	assert_int_equal(len, 16);
	assert_int_equal(cells64(p, 0), ARM64_FW_CFG_BASE);
	assert_int_equal(cells64(p, 2), FW_CFG_MMIO_LEN);
	assert_str(fdt, "/fw-cfg@9020000", "compatible", "qemu,fw-cfg-mmio");
	assert_non_null(fdt_getprop(fdt, off, "dma-coherent", &len));
	free(fdt);

	c.fw_cfg_base = 0;
	fdt = build(&c);
	assert_int_equal(fdt_node_offset_by_compatible(fdt, -1, "qemu,fw-cfg-mmio"),
			 -FDT_ERR_NOTFOUND);
	free(fdt);
}

/* dtc reads the blob back without warnings about the structure (when it is installed). */
static void test_dtc_accepts(void **state)
{
	struct arm64_fdt_config c = base_config();

	dtc_check(&c, false);
}

/* With the ITS and the PCI bridge, dtc's checks pass without a single warning. */
static void test_dtc_accepts_pci(void **state)
{
	struct arm64_fdt_config c = pci_config();

	dtc_check(&c, true);
}

/* The VMGenID as Linux 6.10+ reads it: "microsoft,vmgenid", reg the 16 bytes, an edge SPI; its
 * page of RAM in the memory reservation block. Debian 12's 6.1 arm64 kernel has no DT binding
 * for it, so no nested guest checks this; the blob is what is checked. */
static struct arm64_fdt_config vmgenid_config(void)
{
	struct arm64_fdt_config c = base_config();

	c.vmgenid_base = c.ram_base + c.ram_size - ARM64_VMGENID_PAGE;
	c.vmgenid_spi = ARM64_VMGENID_SPI;
	return c;
}

static void test_vmgenid_node(void **state)
{
	struct arm64_fdt_config c = vmgenid_config();
	void *fdt = build(&c);
	int len, off;
	const void *p;
	uint64_t addr, size;
	char path[40];

	snprintf(path, sizeof(path), "/vmgenid@%llx", (unsigned long long)c.vmgenid_base);
	assert_string_equal(path, "/vmgenid@9ffff000");
	off = node(fdt, path);
	assert_str(fdt, path, "compatible", "microsoft,vmgenid");
	p = prop(fdt, off, "reg", &len);
	assert_int_equal(len, 16);
	assert_int_equal(cells64(p, 0), 0x9ffff000ULL);
	assert_int_equal(cells64(p, 2), 16);
	p = prop(fdt, off, "interrupts", &len);
	assert_int_equal(len, 12);
	assert_int_equal(cell(p, 0), 0); /* GIC_SPI */
	assert_int_equal(cell(p, 1), ARM64_VMGENID_SPI);
	assert_int_equal(cell(p, 2), 1); /* IRQ_TYPE_EDGE_RISING */
	assert_int_equal(fdt_num_mem_rsv(fdt), 1);
	assert_int_equal(fdt_get_mem_rsv(fdt, 0, &addr, &size), 0);
	assert_int_equal(addr, c.vmgenid_base);
	assert_int_equal(size, ARM64_VMGENID_PAGE);
	free(fdt);

	/* Without one: no node, nothing reserved. */
	c = base_config();
	fdt = build(&c);
	assert_int_equal(fdt_node_offset_by_compatible(fdt, -1, "microsoft,vmgenid"),
			 -FDT_ERR_NOTFOUND);
	assert_int_equal(fdt_num_mem_rsv(fdt), 0);
	free(fdt);
}

/* A page that is not whole, not aligned, or not in RAM cannot be reserved: refused. */
static void test_vmgenid_invalid(void **state)
{
	uint8_t buf[BLOB_SIZE];
	const uint64_t bad[] = {
	    ARM64_RAM_BASE + (512ULL << 20) - ARM64_VMGENID_PAGE + 16, /* unaligned, past RAM */
	    ARM64_RAM_BASE + (512ULL << 20),			       /* just past RAM */
	    ARM64_RAM_BASE - ARM64_VMGENID_PAGE,		       /* below RAM */
	    ARM64_RAM_BASE + 0x800,				       /* unaligned */
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct arm64_fdt_config c = vmgenid_config();

		c.vmgenid_base = bad[i];
		assert_int_equal(arm64_fdt_build(&c, buf, sizeof(buf)), -EINVAL);
	}
}

static void test_dtc_accepts_vmgenid(void **state)
{
	struct arm64_fdt_config c = vmgenid_config();

	dtc_check(&c, false);
	c = pci_config();
	c.vmgenid_base = c.ram_base + c.ram_size - ARM64_VMGENID_PAGE;
	c.vmgenid_spi = ARM64_VMGENID_SPI;
	dtc_check(&c, true);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_root_and_memory), cmocka_unit_test(test_cpus_and_psci),
	    cmocka_unit_test(test_gicv3),	    cmocka_unit_test(test_gicv2_and_ppi_cpu_mask),
	    cmocka_unit_test(test_timer_and_pmu),   cmocka_unit_test(test_uart_and_chosen),
	    cmocka_unit_test(test_virtio_nodes),    cmocka_unit_test(test_too_small_buffer),
	    cmocka_unit_test(test_dtc_accepts),	    cmocka_unit_test(test_gpio_and_keys),
	    cmocka_unit_test(test_its_node),	    cmocka_unit_test(test_pci_host_node),
	    cmocka_unit_test(test_pci_layout),	    cmocka_unit_test(test_pci_invalid),
	    cmocka_unit_test(test_dtc_accepts_pci), cmocka_unit_test(test_fw_cfg_node),
	    cmocka_unit_test(test_vmgenid_node),    cmocka_unit_test(test_vmgenid_invalid),
	    cmocka_unit_test(test_dtc_accepts_vmgenid),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
