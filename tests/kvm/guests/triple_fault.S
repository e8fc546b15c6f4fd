/* A guest that triple-faults: 32-bit protected mode with an empty IDT, then an undefined
 * opcode. #UD cannot be delivered (#GP), nor can the #GP (#DF), nor the #DF: shutdown. skiff
 * must end with a non-zero status and a one-line reason, not hang. */
	.code16
	.text
	.globl _start
_start:
	cli
	lgdtl	gdt_desc
	lidtl	empty_idt
	mov	%cr0, %eax
	or	$1, %eax
	mov	%eax, %cr0
	ljmpl	$0x08, $protected

	.code32
protected:
	mov	$0x10, %ax
	mov	%ax, %ds
	mov	%ax, %ss
	ud2
	hlt

	.balign	8
gdt:
	.quad	0
	.quad	0x00cf9a000000ffff	/* 0x08: flat 32-bit code */
	.quad	0x00cf92000000ffff	/* 0x10: flat data */
gdt_desc:
	.word	gdt_desc - gdt - 1
	.long	gdt
empty_idt:
	.word	0
	.long	0
