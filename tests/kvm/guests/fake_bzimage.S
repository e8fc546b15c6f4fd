/* A stand-in for a Linux bzImage, for firmware tests (tests/cli/firmware: --firmware with
 * --kernel): a setup header (boot protocol 2.15, loaded high) and real-mode setup code that a
 * boot loader enters at setup segment + 0x20, offset 0 (this file's offset 0x200), with DS at the
 * setup segment. It prints "fake-linux: setup reached, command line: " and the command line the
 * header's cmd_line_ptr points to (below 1 MiB) on COM1, then powers the VM off through skiff's
 * ACPI sleep register. Then four setup sectors' worth of padding and a 4 KiB "kernel". */
	.code16
	.text
	.globl _start
_start:
	.org	0x1f1
	.byte	4			/* setup_sects */
	.org	0x1fe
	.short	0xaa55			/* boot_flag */
	jmp	setup			/* 0x200: where the boot loader jumps */
	.ascii	"HdrS"			/* 0x202 */
	.short	0x020f			/* version */
	.org	0x211
	.byte	0x01			/* loadflags: LOADED_HIGH */
	.org	0x22c
	.long	0x7fffffff		/* initrd_addr_max */
	.org	0x238
	.long	2048			/* cmdline_size */
	.org	0x268
setup:
	cli
	mov	$(msg - _start), %si
	call	puts			/* DS is the setup segment: offsets from _start */
	mov	%ds:0x228, %eax		/* cmd_line_ptr, as the loader left it */
	mov	%eax, %ebx
	shr	$4, %ebx
	mov	%bx, %ds
	and	$0xf, %ax
	mov	%ax, %si
	call	puts
	mov	$0x3f8, %dx
	mov	$'\n', %al
	out	%al, (%dx)
	mov	$0x600, %dx		/* SLP_TYP 5 (S5) << 2 | SLP_EN */
	mov	$0x34, %al
	out	%al, (%dx)
1:	hlt
	jmp	1b

/* Writes the NUL-terminated string at DS:SI to COM1. */
puts:
	mov	$0x3f8, %dx
	cld
1:	lodsb
	test	%al, %al
	jz	2f
	out	%al, (%dx)
	jmp	1b
2:	ret

msg:
	.asciz	"fake-linux: setup reached, command line: "
	.org	5 * 512
	.fill	4096, 1, 0x90		/* the protected-mode "kernel" */
