/* MMIO exits: switch to 32-bit flat protected mode, then read and write a probe device the test
 * registers at 0xd0000000 (in the MMIO hole, where no RAM is), and read an unclaimed address. */
	.code16
	.text
	.globl _start
_start:
#include "protected_mode.inc"
	movl	$0xcafef00d, 0xd0000000	/* dword write at offset 0 */
	movb	$0x42, 0xd0000001	/* byte write at offset 1 */
	movl	0xd0000004, %eax	/* dword read at offset 4: the probe answers 0x11223344 */
	movl	%eax, 0xd0000008	/* echo it at offset 8 */
	movl	0xe0000000, %eax	/* unclaimed: reads as all ones */
	movl	%eax, 0xd000000c	/* echo it at offset 12 */
	hlt
