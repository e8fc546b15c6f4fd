/* fw_cfg from a real-mode guest, as SeaBIOS and kvm-unit-tests use it: the signature, NB_CPUS
 * and RAM_SIZE through the selector (0x510) and data (0x511) ports, then a DMA read of the file
 * directory's count (big-endian) through 0x514/0x518. Every byte read, then the DMA request's
 * control word as the device left it, goes out to the test's probe at port 0x530; then `hlt`. */
	.code16
	.text
	.globl _start
_start:
	cli
	xor	%ax, %ax
	mov	%ax, %ds
	mov	$0x00, %ax		/* FW_CFG_SIGNATURE: 4 bytes */
	mov	$4, %cx
	call	item
	mov	$0x05, %ax		/* FW_CFG_NB_CPUS: 2 bytes */
	mov	$2, %cx
	call	item
	mov	$0x03, %ax		/* FW_CFG_RAM_SIZE: 8 bytes */
	mov	$8, %cx
	call	item

	/* The request at 0x800 (all fields big-endian): select FW_CFG_FILE_DIR and read 4 bytes
	 * to 0x900. */
	movl	$0x0a001900, 0x800	/* control 0x0019000a: key 0x19, SELECT | READ */
	movl	$0x04000000, 0x804	/* length 4 */
	movl	$0, 0x808		/* address, high half */
	movl	$0x00090000, 0x80c	/* address, low half: 0x900 */
	movl	$0xffffffff, 0x900
	mov	$0x514, %dx
	xor	%eax, %eax
	out	%eax, (%dx)		/* the request's address, high half */
	mov	$0x518, %dx
	mov	$0x00080000, %eax	/* low half, big-endian: 0x800 */
	out	%eax, (%dx)		/* starts the transfer */
	mov	$0x530, %dx
	mov	0x900, %eax
	out	%eax, (%dx)		/* the count as it landed in memory */
	mov	0x800, %eax
	out	%eax, (%dx)		/* the control word: 0 when it went well */
	hlt

/* Selects item %ax and copies %cx bytes of it to the probe, one byte each. */
item:
	mov	$0x510, %dx
	out	%ax, (%dx)
1:	mov	$0x511, %dx
	in	(%dx), %al
	mov	$0x530, %dx
	out	%al, (%dx)
	loop	1b
	ret
