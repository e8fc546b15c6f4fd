/* The x86_64 guest physical memory map and port assignments: one table, so that the loaders,
 * the ACPI tables, the e820 map and the devices agree.
 *
 *   0x0000_0500  GDT                 0x0000_7000  boot_params (zero page)
 *   0x0000_1000  --raw binaries      0x0000_9000  PML4, PDPT, 4 PDs: identity map of 4 GiB
 *   0x0000_6000  PVH start info      0x0002_0000  kernel command line
 *   0x0000_6800  PVH memory map      0x0009_fc00  EBDA .. 1 MiB: reserved in e820
 *   (0x0000_7000  for a multiboot kernel: its information structure, modules, memory map)
 *   0x000e_0000  ACPI tables (RSDP first, where the guest also finds it by scanning)
 *   0x000f_e000  VMGenID: the 16-byte generation ID (devices/vmgenid.h), one page
 *   0x000f_fff0  the reset vector: a stub that resets the VM through the ACPI reset register
 *   0x0010_0000  kernel (bzImage protected-mode code; ELF at its own physical addresses)
 *   RAM up to 3 GiB; 3 GiB .. 4 GiB is the MMIO hole:
 *   0xc000_0000  PCI BARs (--enable-pci): the host bridge's 32-bit memory window, 192 MiB
 *   0xcfff_f000  boot timer          0xd000_0000  virtio-mmio devices, a page each
 *   0xe000_0000  PCI ECAM (bus 0)    0xfec0_0000  IOAPIC    0xfee0_0000  LAPIC
 *   with --firmware: PCI BARs from 0xf000_0000 to the IOAPIC (where SeaBIOS puts them), the
 *   BIOS image ending at 4 GiB (read-only), and its top 128 KiB copied to 0xe_0000 (shadow RAM)
 *   RAM beyond 3 GiB continues at 4 GiB.
 */
#ifndef SKIFF_X86_LAYOUT_H
#define SKIFF_X86_LAYOUT_H

#define X86_GDT_ADDR	      0x500ULL
#define X86_RAW_LOAD_ADDR     0x1000ULL
#define X86_PVH_INFO_ADDR     0x6000ULL
#define X86_PVH_MODLIST_ADDR  0x6400ULL /* PVH module list: the initrd */
#define X86_PVH_MEMMAP_ADDR   0x6800ULL
#define X86_BOOT_PARAMS_ADDR  0x7000ULL
/* Multiboot kernels get the boot_params page instead: the information structure, the boot
 * loader's name, the module list and the memory map (the strings go at X86_CMDLINE_ADDR). */
#define X86_MULTIBOOT_INFO_ADDR	  0x7000ULL
#define X86_MULTIBOOT_NAME_ADDR	  0x7080ULL
#define X86_MULTIBOOT_MODS_ADDR	  0x7100ULL
#define X86_MULTIBOOT_MMAP_ADDR	  0x7200ULL
#define X86_MULTIBOOT_MMAP_END	  0x8000ULL
#define X86_BOOT_STACK_ADDR   0x8ff0ULL
#define X86_RAW_STACK_ADDR    0xfff0ULL /* real-mode sp for --raw binaries (ss = 0) */
#define X86_PML4_ADDR	      0x9000ULL
#define X86_PDPT_ADDR	      0xa000ULL
#define X86_PD_ADDR	      0xb000ULL /* 4 pages */
#define X86_CMDLINE_ADDR      0x20000ULL
#define X86_CMDLINE_MAX	      0x10000ULL /* bytes, including the NUL */
#define X86_EBDA_START	      0x9fc00ULL
#define X86_ACPI_START	      0xe0000ULL
#define X86_ACPI_END	      0xfe000ULL
/* The VMGenID's page: reserved in the e820 map (EBDA .. 1 MiB) so the guest leaves it alone,
 * and below 1 MiB so a guest's /dev/mem may read it under STRICT_DEVMEM. Not with --firmware,
 * whose BIOS owns this range. */
#define X86_VMGENID_ADDR      0xfe000ULL
#define X86_RESET_VECTOR_ADDR 0xffff0ULL /* F000:FFF0: skiff's reset stub, 16 bytes */
#define X86_HIMEM_START	      0x100000ULL
#define X86_MMIO_HOLE_START   0xc0000000ULL
#define X86_MMIO_HOLE_END     0x100000000ULL
#define X86_BOOT_TIMER_ADDR   0xcffff000ULL /* devices/boot_timer.h: one page */
#define X86_VIRTIO_MMIO_START 0xd0000000ULL /* virtio-mmio devices are placed from here, */
#define X86_VIRTIO_MMIO_STRIDE 0x1000ULL    /* one page each */
#define X86_PCI_MMIO_START    0xc0000000ULL /* PCI BARs */
#define X86_PCI_MMIO_SIZE     0x0c000000ULL
/* With --firmware: where SeaBIOS puts BARs (top-down from the I/O APIC). */
#define X86_PCI_FW_MMIO_START 0xf0000000ULL
#define X86_PCI_FW_MMIO_SIZE  0x0ec00000ULL
#define X86_PCI_ECAM_ADDR     0xe0000000ULL /* ECAM config space of bus 0 */
#define X86_PCI_ECAM_SIZE     0x00100000ULL
#define X86_IOAPIC_ADDR	      0xfec00000ULL
#define X86_LAPIC_ADDR	      0xfee00000ULL
#define X86_IDENTITY_MAP_ADDR 0xfeffc000ULL /* KVM_SET_IDENTITY_MAP_ADDR: 1 page */
#define X86_TSS_ADDR	      0xfeffd000ULL /* KVM_SET_TSS_ADDR: 3 pages */

/* Legacy ports and their ISA IRQs (GSIs, identity-routed to PIC and IOAPIC). */
#define X86_COM1_PORT	      0x3f8
#define X86_COM1_IRQ	      4
#define X86_I8042_DATA_PORT   0x60
#define X86_I8042_CMD_PORT    0x64
#define X86_I8042_KBD_IRQ     1
#define X86_RTC_PORT	      0x70 /* index at 0x70, data at 0x71 */
#define X86_RTC_IRQ	      8
#define X86_RTC_CENTURY_INDEX 0x32 /* CMOS register holding the century (the FADT names it) */
/* The ACPI Generic Event Device that notifies the VMGenID: the PC's SCI line, which a
 * hardware-reduced platform does not otherwise use. */
#define X86_VMGENID_GSI	      9
/* --debug-exit: where QEMU's isa-debug-exit sits for kvm-unit-tests (iobase 0xf4, iosize 4). */
#define X86_DEBUG_EXIT_PORT   0xf4
#define X86_DEBUG_EXIT_LEN    4

/* skiff's ACPI hardware-reduced power device: sleep control, sleep status and reset registers
 * as the FADT describes them. */
/* PCI configuration mechanism #1: address at 0xcf8, data at 0xcfc..0xcff. */
#define X86_PCI_CONFIG_PORT   0xcf8
#define X86_PCI_CONFIG_LEN    8

#define X86_ACPI_PM_PORT      0x600
#define X86_ACPI_PM_LEN	      4
#define X86_ACPI_SLEEP_CTL    0x600 /* write (SLP_TYP << 2) | SLP_EN */
#define X86_ACPI_SLEEP_STS    0x601
#define X86_ACPI_RESET_PORT   0x602
#define X86_ACPI_RESET_VALUE  0x1
#define X86_ACPI_S5_SLP_TYP   5 /* the value \_S5 hands to the guest */

#endif
