/* A boot sector for firmware tests (tests/cli/run: --firmware): the firmware loads it from the
 * disk at 0x7c00 and jumps to it in real mode. It prints a line through the BIOS's teletype
 * call (int 0x10, which SeaBIOS sends to COM1 when the machine has no graphics) and powers the
 * VM off through skiff's ACPI sleep register (S5). Linked at 0x1000 like the other guests, so
 * DS = 0x06c0 makes its labels' offsets land at 0x7c00 + (label - 0x1000). */
	.code16
	.text
	.globl _start
_start:
	cli
	mov	$0x06c0, %ax
	mov	%ax, %ds
	mov	$msg, %si
	cld
1:	lodsb
	test	%al, %al
	jz	2f
	mov	$0x0e, %ah		/* teletype output of %al */
	mov	$0x0007, %bx
	int	$0x10
	jmp	1b
2:	mov	$0x600, %dx		/* SLP_TYP 5 (S5) << 2 | SLP_EN */
	mov	$0x34, %al
	out	%al, (%dx)
3:	hlt
	jmp	3b
msg:
	.asciz	"skiff-mbr: booted by the firmware\r\n \r\n"
	.org	510
	.byte	0x55, 0xaa
