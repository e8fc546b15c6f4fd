/* skiff's built-in demo guest for x86_64: the classic first KVM program.
 *
 * skiff loads this flat binary at 0x1000 and starts the vCPU in 16-bit real mode with every
 * segment at 0. It writes its greeting one byte at a time to port 0x3f8, the data register of
 * the 16550A UART that skiff emulates as COM1; each `out` is a VM exit that skiff dispatches
 * through its port-I/O registry to the UART, which prints the byte on skiff's stdout. Then the
 * guest disables interrupts and halts, and skiff, seeing a vCPU halted for good, exits 0. */
	.code16
	.text
	.globl _start
_start:
	cli
	cld
	mov	$0x3f8, %dx
	mov	$greeting, %si
next:
	lodsb
	test	%al, %al
	jz	done
	out	%al, (%dx)
	jmp	next
done:
	hlt
	jmp	done

greeting:
#include "greeting.inc"
