/* The hostile suite's whole-port-space scan (tests/kvm/test_hostile.c), in real mode: every port
 * 0..0xffff read and written with 0 (COM1, which carries the report, only read), and written with
 * 0xff where that cannot power the VM off, reset it, or reprogram COM1. The C hostile guest runs
 * at CPL3, where this KVM faults port accesses from 0x8000 up; real mode has no such limit. Then
 * "hostile: port-scan-all: ok" on COM1 and `hlt`, which ends the VM. */
	.code16
	.text
	.globl	_start
_start:
	xor	%cx, %cx		/* the port */
1:	mov	%cx, %dx
	inb	%dx, %al
	cmp	$0x3f8, %cx
	jb	2f
	cmp	$0x3ff, %cx
	jbe	3f			/* COM1: read only */
2:	xor	%al, %al
	outb	%al, %dx
	cmp	$0x60, %cx		/* i8042 (0x64 0xfe resets), ACPI PM (0x600 powers off) */
	jb	4f
	cmp	$0x64, %cx
	jbe	3f
	cmp	$0x600, %cx
	jb	4f
	cmp	$0x603, %cx
	jbe	3f
4:	mov	$0xff, %al
	outb	%al, %dx
3:	inc	%cx
	jnz	1b

	mov	$0x3f8, %dx
	mov	$msg, %si
5:	lodsb
	test	%al, %al
	jz	6f
	outb	%al, %dx
	jmp	5b
6:	hlt

msg:	.asciz	"hostile: port-scan-all: ok\n"
