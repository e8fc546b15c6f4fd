/* MMIO exits: switch to 32-bit flat protected mode, then read and write a probe device the test
 * registers at 0xd0000000 (in the MMIO hole, where no RAM is), and read an unclaimed address. */
	.code16
	.text
	.globl _start
_start:
	cli
	lgdtl	gdt_desc
	mov	%cr0, %eax
	or	$1, %eax
	mov	%eax, %cr0
	ljmpl	$0x08, $protected

	.code32
protected:
	mov	$0x10, %ax
	mov	%ax, %ds
	mov	%ax, %es
	mov	%ax, %ss
	movl	$0xcafef00d, 0xd0000000	/* dword write at offset 0 */
	movb	$0x42, 0xd0000001	/* byte write at offset 1 */
	movl	0xd0000004, %eax	/* dword read at offset 4: the probe answers 0x11223344 */
	movl	%eax, 0xd0000008	/* echo it at offset 8 */
	movl	0xe0000000, %eax	/* unclaimed: reads as all ones */
	movl	%eax, 0xd000000c	/* echo it at offset 12 */
	hlt

	.balign	8
gdt:
	.quad	0
	.quad	0x00cf9a000000ffff	/* 0x08: flat 32-bit code */
	.quad	0x00cf92000000ffff	/* 0x10: flat data */
gdt_desc:
	.word	gdt_desc - gdt - 1
	.long	gdt
