/* The arm64 guest physical memory map and interrupt numbers: one table, so that the loaders, the
 * device tree, the vGIC and the devices agree. Devices sit below 2 GiB, RAM starts at 2 GiB.
 *
 *   0x0800_0000  GIC distributor (64 KiB)
 *   0x0801_0000  GICv2 CPU interface (8 KiB, in a 64 KiB slot)    (GICv2 only)
 *   0x0808_0000  GICv3 ITS (128 KiB: control and translation frames) (--enable-pci only)
 *   0x080a_0000  GICv3 redistributors, 128 KiB per vCPU, up to 0x0900_0000 (123 vCPUs)
 *   0x0900_0000  16550A UART (ttyS0), 4 KiB slot
 *   0x0900_1000  boot timer (devices/boot_timer.h), 4 KiB, not in the device tree
 *   0x0901_0000  PL061 GPIO controller (4 KiB): the gpio-keys buttons Ctrl, Alt, Delete
 *   0x0902_0000  fw_cfg (devices/fw_cfg.h), 0x18 bytes in a 4 KiB slot, as on QEMU's virt
 *   0x0a00_0000  virtio-mmio devices, one 4 KiB page each (VIRTIO_MMIO_SIZE bytes used)
 *   0x1000_0000  PCI memory window (512 MiB): the 32-bit BARs, identity-mapped (--enable-pci)
 *   0x3000_0000  PCI ECAM: bus 0's 1 MiB of configuration space (room up to 0x4000_0000 for 256
 *                buses)
 *   0x8000_0000  RAM: the kernel Image at a 2 MiB-aligned base + text_offset (the start of RAM),
 *                --raw binaries at the start of RAM; the DTB in the top 2 MiB of RAM, the
 *                initrd right below it; a Linux guest's last 4 KiB page of RAM holds the
 *                VMGenID (devices/vmgenid.h), /memreserve/d in the DTB, which ends below it.
 *
 * Interrupts are numbered as the device tree numbers them: SPI n is GIC INTID 32 + n, and in
 * skiff an arm64 "GSI" (irq_line, KVM_IRQFD) is the SPI number. PPI n is INTID 16 + n.
 */
#ifndef SKIFF_ARM64_LAYOUT_H
#define SKIFF_ARM64_LAYOUT_H

#define ARM64_GIC_DIST_BASE	0x08000000ULL
#define ARM64_GIC_DIST_SIZE	0x10000ULL
#define ARM64_GIC_CPU_BASE	0x08010000ULL /* GICv2 */
#define ARM64_GIC_CPU_SIZE	0x2000ULL
#define ARM64_GIC_REDIST_BASE	0x080a0000ULL /* GICv3 */
#define ARM64_GIC_REDIST_END	0x09000000ULL
#define ARM64_GIC_REDIST_STRIDE 0x20000ULL /* RD_base + SGI_base frames, per vCPU */
#define ARM64_GIC_V2_MAX_CPUS	8
#define ARM64_GIC_V3_MAX_CPUS                                                                      \
	((ARM64_GIC_REDIST_END - ARM64_GIC_REDIST_BASE) / ARM64_GIC_REDIST_STRIDE)
#define ARM64_GIC_ITS_BASE 0x08080000ULL /* 64 KiB-aligned, below the redistributors */
#define ARM64_GIC_ITS_SIZE 0x20000ULL	 /* GITS control frame + translation frame */
#define ARM64_GIC_NR_IRQS  128		 /* SGIs + PPIs + 96 SPIs; a multiple of 32 */

#define ARM64_UART_BASE	 0x09000000ULL
#define ARM64_UART_SIZE	 0x1000ULL
#define ARM64_UART_CLOCK 1843200 /* Hz: the classic 16550 crystal, 115200 baud at divisor 1 */

#define ARM64_BOOT_TIMER_BASE 0x09001000ULL
#define ARM64_GPIO_BASE	      0x09010000ULL
#define ARM64_FW_CFG_BASE     0x09020000ULL
#define ARM64_GPIO_CLOCK      24000000 /* Hz: the apb_pclk fixed clock the AMBA bus asks for */
/* The gpio-keys buttons' PL061 lines (active high) and the Linux key codes they report. */
#define ARM64_GPIO_LINE_CTRL   0
#define ARM64_GPIO_LINE_ALT    1
#define ARM64_GPIO_LINE_DELETE 2
#define ARM64_KEY_LEFTCTRL     29
#define ARM64_KEY_LEFTALT      56
#define ARM64_KEY_DELETE       111

#define ARM64_VIRTIO_MMIO_START	 0x0a000000ULL
#define ARM64_VIRTIO_MMIO_STRIDE 0x1000ULL
#define ARM64_VIRTIO_MMIO_MAX	 32

/* PCI (--enable-pci): a pci-host-ecam-generic bridge. CPU addresses in the memory window are
 * PCI bus addresses (no translation); no I/O space (virtio 1.x BARs are memory BARs). */
#define ARM64_PCI_MMIO_BASE 0x10000000ULL
#define ARM64_PCI_MMIO_SIZE 0x20000000ULL
#define ARM64_PCI_ECAM_BASE 0x30000000ULL
#define ARM64_PCI_ECAM_SIZE 0x100000ULL /* bus 0: 32 devices x 8 functions x 4 KiB */

#define ARM64_RAM_BASE	   0x80000000ULL
#define ARM64_KERNEL_ALIGN 0x200000ULL /* the Image goes at a 2 MiB-aligned base */
#define ARM64_FDT_MAX_SIZE 0x200000ULL /* booting.rst: at most 2 MiB, in its own 2 MiB */
#define ARM64_MAX_IPA_BITS 40	       /* KVM's default IPA size: RAM must end below 1 TiB */
#define ARM64_VMGENID_PAGE 0x1000ULL   /* the last page of RAM */

/* SPIs (device tree numbering: INTID - 32). */
#define ARM64_UART_SPI	      1
#define ARM64_GPIO_SPI	      2
#define ARM64_VMGENID_SPI     3
#define ARM64_VIRTIO_SPI_BASE 16 /* virtio-mmio device i raises SPI 16 + i */

/* PPIs (device tree numbering: INTID - 16). The architected timer's four, as the "arm,armv8-timer"
 * binding lists them: secure physical, non-secure physical, virtual, hypervisor. */
#define ARM64_TIMER_PPI_SEC_PHYS 13
#define ARM64_TIMER_PPI_PHYS	 14
#define ARM64_TIMER_PPI_VIRT	 11
#define ARM64_TIMER_PPI_HYP	 10
#define ARM64_PMU_PPI		 7 /* INTID 23 */

#endif
