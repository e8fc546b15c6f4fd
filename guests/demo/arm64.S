/* skiff's built-in demo guest for arm64: the classic first KVM program, on an ARM core.
 *
 * skiff loads this flat binary at the start of RAM (0x80000000) and starts the vCPU there at
 * EL1 with the MMU off. It stores its greeting one byte at a time into the transmit register
 * of the 16550A UART that skiff emulates in MMIO at 0x09000000 (src/arch/arm64/layout.h); each
 * store is a KVM_EXIT_MMIO that skiff dispatches through its MMIO registry to the UART, which
 * prints the byte on skiff's stdout. Then the guest calls PSCI SYSTEM_OFF (hvc #0 with
 * x0 = 0x84000008), which KVM turns into a system event, and skiff exits 0. */
	.text
	.globl	_start
_start:
	ldr	x1, =0x09000000		/* UART: THR at offset 0 */
	adr	x2, greeting
next:
	ldrb	w0, [x2], #1
	cbz	w0, done
	strb	w0, [x1]
	b	next
done:
	ldr	x0, =0x84000008		/* PSCI 0.2 SYSTEM_OFF */
	hvc	#0
halt:
	wfi				/* not reached: SYSTEM_OFF does not return */
	b	halt

	.ltorg
greeting:
	.ascii	"Hello from the skiff demo guest!\r\n"
	.ascii	"This is AArch64 code running at EL1 in a KVM virtual machine. Each byte of this\r\n"
	.ascii	"text left the guest through a store to the UART at 0x09000000 (an MMIO exit) and\r\n"
	.ascii	"was printed by skiff's 16550A UART emulation. Now the guest calls PSCI\r\n"
	.asciz	"SYSTEM_OFF, and skiff exits.\r\n"
