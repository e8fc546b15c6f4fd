/* Console input: echo every byte received on COM1 back to COM1, until a 'q'. The host's stdin
 * reaches the guest only through skiff's UART receive path (FIFO, LSR.DR, RBR), so the output
 * proves that path end to end. Polled, no interrupts: bare-metal guests have no irqchip. */
	.code16
	.text
	.globl _start
_start:
	cli
wait_byte:
	mov	$0x3fd, %dx		/* LSR */
	in	(%dx), %al
	test	$1, %al			/* DR: a received byte is waiting */
	jz	wait_byte
	mov	$0x3f8, %dx		/* RBR */
	in	(%dx), %al
	cmp	$'q', %al
	je	done
	out	%al, (%dx)		/* THR */
	jmp	wait_byte
done:
	hlt
