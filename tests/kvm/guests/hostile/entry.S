/* The hostile guest's entry: from real mode at 0x1000 (where `skiff run --raw` starts it) to
 * 64-bit long mode with the low 4 GiB identity-mapped (2 MiB pages, user-accessible, so the MMIO
 * hole is reachable), then down to CPL3 with IOPL 3: on this project's /dev/kvm, CPL0 code is
 * emulated instruction by instruction while CPL3 code runs natively, and IOPL 3 keeps port I/O
 * allowed. guest_main() (cases.c) never returns: it powers the VM off. */
	.section .text.entry, "ax"
	.code16
	.globl	_start
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
	/* PML4[0] -> PDPT, PDPT[0..3] -> four page directories of 512 2-MiB pages each. */
	movl	$(PDPT + 7), PML4
	movl	$PD, %eax
	xor	%ecx, %ecx
1:	lea	7(%eax), %edx
	movl	%edx, PDPT(,%ecx,8)
	add	$0x1000, %eax
	inc	%ecx
	cmp	$4, %ecx
	jne	1b
	xor	%ecx, %ecx
2:	mov	%ecx, %eax
	shl	$21, %eax
	or	$0x87, %eax		/* present, writable, user, 2 MiB */
	movl	%eax, PD(,%ecx,8)
	inc	%ecx
	cmp	$2048, %ecx
	jne	2b
	mov	$PML4, %eax
	mov	%eax, %cr3
	mov	%cr4, %eax
	or	$0x20, %eax		/* PAE */
	mov	%eax, %cr4
	mov	$0xc0000080, %ecx	/* EFER.LME */
	rdmsr
	or	$0x100, %eax
	wrmsr
	mov	%cr0, %eax
	or	$0x80000000, %eax	/* paging: long mode is active */
	mov	%eax, %cr0
	ljmpl	$0x18, $long_mode

	.code64
long_mode:
	mov	$0x10, %ax
	mov	%ax, %ds
	mov	%ax, %es
	mov	%ax, %ss
	mov	$STACK_TOP, %rsp
	/* iretq to CPL3: SS, RSP, RFLAGS (IOPL 3, interrupts off), CS, RIP. */
	pushq	$0x23
	pushq	$STACK_TOP
	pushq	$0x3002
	pushq	$0x2b
	pushq	$guest_main
	iretq

	.balign	8
gdt:
	.quad	0
	.quad	0x00cf9a000000ffff	/* 0x08: flat 32-bit code */
	.quad	0x00cf92000000ffff	/* 0x10: flat data */
	.quad	0x00af9a000000ffff	/* 0x18: 64-bit code */
	.quad	0x00cff2000000ffff	/* 0x20: user data (0x23 with RPL 3) */
	.quad	0x00affa000000ffff	/* 0x28: user 64-bit code (0x2b) */
gdt_desc:
	.word	gdt_desc - gdt - 1
	.long	gdt

	.set	PML4, 0x80000
	.set	PDPT, 0x81000
	.set	PD, 0x82000		/* 4 pages */
	.set	STACK_TOP, 0x200000
	.section .note.GNU-stack, "", @progbits
