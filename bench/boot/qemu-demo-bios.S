/* The demo guest as a 64 KiB BIOS image, for running it on QEMU (bench/boot/run): QEMU starts it
 * at the reset vector F000:FFF0, it prints the same greeting to COM1 and leaves through QEMU's
 * isa-debug-exit device at port 0xf4 (QEMU does not exit on a halt). */
	.code16
	.text
	.globl _start
_start:
	cli
	cld
	mov	%cs, %ax
	mov	%ax, %ds
	mov	$0x3f8, %dx
	mov	$greeting, %si
next:
	lodsb
	test	%al, %al
	jz	done
	out	%al, (%dx)
	jmp	next
done:
	mov	$0xf4, %dx
	xor	%al, %al
	out	%al, (%dx)
	hlt
	jmp	done
greeting:
#include "../../guests/demo/greeting.inc"

	.org	0xfff0
	ljmp	$0xf000, $_start
	.org	0x10000
