/* PCI configuration space layout (PCI Local Bus 3.0, chapter 6; PCI Express base for ECAM):
 * the type-0 header's registers and bits that skiff's host bridge and devices use. */
#ifndef SKIFF_PCI_REGS_H
#define SKIFF_PCI_REGS_H

#define PCI_CONFIG_SIZE	 256  /* conventional config space (CF8/CFC reaches this much) */
#define PCI_ECAM_FN_SIZE 4096 /* ECAM gives each function 4 KiB; beyond 256 reads as 0 */

#define PCI_VENDOR_ID	   0x00
#define PCI_DEVICE_ID	   0x02
#define PCI_COMMAND	   0x04
#define PCI_STATUS	   0x06
#define PCI_REVISION_ID	   0x08
#define PCI_CLASS_PROG	   0x09
#define PCI_CLASS_DEVICE   0x0a
#define PCI_CACHE_LINE	   0x0c
#define PCI_LATENCY_TIMER  0x0d
#define PCI_HEADER_TYPE	   0x0e
#define PCI_BAR0	   0x10
#define PCI_NR_BARS	   6
#define PCI_SUBSYS_VENDOR  0x2c
#define PCI_SUBSYS_ID	   0x2e
#define PCI_ROM_ADDRESS	   0x30
#define PCI_CAP_PTR	   0x34
#define PCI_INTERRUPT_LINE 0x3c
#define PCI_INTERRUPT_PIN  0x3d
#define PCI_CAPS_START	   0x40 /* the first capability goes here */

#define PCI_COMMAND_IO	     0x0001
#define PCI_COMMAND_MEMORY   0x0002
#define PCI_COMMAND_MASTER   0x0004
#define PCI_COMMAND_SERR     0x0100
#define PCI_COMMAND_INTX_OFF 0x0400
#define PCI_STATUS_CAP_LIST  0x0010

#define PCI_BAR_MEM_32	  0x0 /* bits 2:1 of a memory BAR: 32-bit */
#define PCI_BAR_ADDR_MASK 0xfffffff0u

#define PCI_CAP_ID_VNDR 0x09 /* vendor specific (virtio's capabilities) */
#define PCI_CAP_ID_MSIX 0x11

/* MSI-X capability (6.8.2): message control at +2, table and PBA offset/BIR at +4 and +8. */
#define PCI_MSIX_FLAGS	       2
#define PCI_MSIX_TABLE	       4
#define PCI_MSIX_PBA	       8
#define PCI_MSIX_CAP_SIZE      12
#define PCI_MSIX_FLAGS_ENABLE  0x8000
#define PCI_MSIX_FLAGS_MASKALL 0x4000
#define PCI_MSIX_ENTRY_SIZE    16
#define PCI_MSIX_ENTRY_ADDR_LO 0
#define PCI_MSIX_ENTRY_ADDR_HI 4
#define PCI_MSIX_ENTRY_DATA    8
#define PCI_MSIX_ENTRY_CTRL    12
#define PCI_MSIX_ENTRY_MASKED  0x1

#define PCI_CLASS_BRIDGE_HOST 0x060000

/* Config mechanism #1 (the CF8 address register). */
#define PCI_CF8_ENABLE 0x80000000u

#endif
