/* Port I/O exits of every width, a string instruction, and an unclaimed port. The test registers
 * a probe device at ports 0x530-0x537 and checks each access it sees, in order. */
	.code16
	.text
	.globl _start
_start:
	cli
	mov	$0x530, %dx
	mov	$0x41, %al
	out	%al, (%dx)		/* byte write 0x41 at offset 0 */
	mov	$0x1234, %ax
	out	%ax, (%dx)		/* word write 0x1234 at offset 0 */
	mov	$0x531, %dx
	in	(%dx), %al		/* byte read at offset 1: the probe answers 0x5a */
	mov	$0x532, %dx
	out	%al, (%dx)		/* echo it: byte write 0x5a at offset 2 */
	mov	$0x540, %dx
	in	(%dx), %al		/* unclaimed port: reads as 0xff */
	mov	$0x532, %dx
	out	%al, (%dx)		/* echo it: byte write 0xff at offset 2 */
	mov	$0x534, %dx
	mov	$0xdeadbeef, %eax
	out	%eax, (%dx)		/* dword write at offset 4 */
	mov	$0x533, %dx
	mov	$text, %si
	mov	$3, %cx
	cld
	rep outsb			/* three byte writes 'x' 'y' 'z' at offset 3 */
	hlt
text:
	.ascii	"xyz"
