/* The GDB stub's test guest (tests/cli/gdb, tests/cli/gdb_rsp.py). From real mode at 0x1000 to
 * 64-bit long mode at CPL0 with two mappings of the low memory: the low 4 GiB identity-mapped
 * with 2 MiB pages, and the first 2 MiB again at HIGH (0xffffffff80000000) through a 4 KiB page
 * table, as a kernel maps itself. The loop runs at the high alias, so every address gdb sends is
 * one the stub must translate through the guest's page tables (4 levels, 4 KiB pages).
 * The loop runs at CPL0, as a kernel would (on this project's /dev/kvm, kvm_pvm, CPL0 code is
 * emulated: its hardware breakpoints, watchpoints and single steps work, an int3 does not; at
 * CPL3 it honours neither, so the test skips software breakpoints there). The loop: count in rbx, store the count (a watchpoint's target), call `func` (a
 * breakpoint's), until the debugger writes a non-zero byte to `stop_flag`; then "done" on the
 * UART, and power-off through skiff's ACPI sleep register (S5). */
	.set	HIGH, 0xffffffff80000000
	.set	PML4, 0x10000
	.set	PDPT_LO, 0x11000
	.set	PD_LO, 0x12000		/* four of them, to 0x15fff */
	.set	PDPT_HI, 0x16000
	.set	PD_HI, 0x17000
	.set	PT_HI, 0x18000
	.set	STACK_TOP, 0x80000

	.text
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
	/* Clear the tables (0x10000-0x18fff). */
	mov	$PML4, %edi
	xor	%eax, %eax
	mov	$(0x9000 / 4), %ecx
	cld
	rep stosl
	movl	$(PDPT_LO + 7), PML4
	movl	$(PDPT_HI + 7), PML4 + 511 * 8
	mov	$PD_LO, %eax
	xor	%ecx, %ecx
1:	lea	7(%eax), %edx
	movl	%edx, PDPT_LO(,%ecx,8)
	add	$0x1000, %eax
	inc	%ecx
	cmp	$4, %ecx
	jne	1b
	xor	%ecx, %ecx
2:	mov	%ecx, %eax
	shl	$21, %eax
	or	$0x87, %eax		/* present, writable, user, 2 MiB */
	movl	%eax, PD_LO(,%ecx,8)
	inc	%ecx
	cmp	$2048, %ecx
	jne	2b
	/* HIGH: PML4[511] -> PDPT_HI[510] -> PD_HI[0] -> PT_HI: 512 pages of 4 KiB from 0. */
	movl	$(PD_HI + 7), PDPT_HI + 510 * 8
	movl	$(PT_HI + 7), PD_HI
	xor	%ecx, %ecx
3:	mov	%ecx, %eax
	shl	$12, %eax
	or	$7, %eax
	movl	%eax, PT_HI(,%ecx,8)
	inc	%ecx
	cmp	$512, %ecx
	jne	3b
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
	or	$0x80000000, %eax
	mov	%eax, %cr0
	ljmpl	$0x18, $long_mode

	.code64
long_mode:
	mov	$0x10, %ax
	mov	%ax, %ds
	mov	%ax, %es
	mov	%ax, %ss
	movabs	$(HIGH + STACK_TOP), %rsp
	/* iretq to the high alias: SS, RSP, RFLAGS (interrupts off), CS, RIP. */
	pushq	$0x10
	pushq	%rsp
	pushq	$0x2
	pushq	$0x18
	movabs	$(HIGH + high_entry), %rax
	pushq	%rax
	iretq

	.globl	high_entry, loop, func, counter, stop_flag
high_entry:
	xor	%ebx, %ebx
loop:
	inc	%rbx
	mov	%rbx, counter(%rip)
	call	func
	cmpb	$0, stop_flag(%rip)
	je	loop
	mov	$0x3f8, %dx
	lea	done_text(%rip), %rsi
	mov	$5, %ecx
	rep outsb
	mov	$0x600, %dx
	mov	$0x34, %al		/* SLP_TYP 5 | SLP_EN: S5, power off */
1:	out	%al, (%dx)
	jmp	1b
func:
	nop
	nop
	ret

	.balign	8
counter:
	.quad	0
stop_flag:
	.quad	0
done_text:
	.ascii	"done\n"

	.balign	8
gdt:
	.quad	0
	.quad	0x00cf9a000000ffff	/* 0x08: flat 32-bit code */
	.quad	0x00cf92000000ffff	/* 0x10: flat data */
	.quad	0x00af9a000000ffff	/* 0x18: 64-bit code */
gdt_desc:
	.word	gdt_desc - gdt - 1
	.long	gdt
