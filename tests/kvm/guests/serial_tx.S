/* COM1's transmitter as Linux's console drives it: 512 dots with the THRE interrupt off, which
 * exit one by one (skiff batches only a guest that has said that much), eight more bytes, which
 * skiff batches (vmm/coalesced.h), then the interrupt on and two more bytes, which must exit one
 * by one. The test checks that all 522 reach the serial output in order, and how many exits
 * they took. */
	.code16
	.text
	.globl _start
_start:
	cli
	mov	$0x3f8, %dx
	mov	$'.', %al
	mov	$512, %cx
0:	out	%al, (%dx)
	loop	0b
	mov	$text, %si
	mov	$8, %cx
	cld
1:	lodsb
	out	%al, (%dx)		/* THR, one byte at a time */
	loop	1b
	mov	$0x3f9, %dx
	mov	$0x02, %al
	out	%al, (%dx)		/* IER: THRE interrupt on */
	mov	$0x3f8, %dx
	mov	$'X', %al
	out	%al, (%dx)
	mov	$'Y', %al
	out	%al, (%dx)
	hlt
text:
	.ascii	"abcdefgh"
