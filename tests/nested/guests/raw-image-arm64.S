/* A raw arm64 test image (no Image header) for the nested arm64 harness: `skiff run --kernel`
 * loads it at RAM + 0x80000 with the whole platform and x0 = the device tree, as kvmtool loads
 * kvm-unit-tests' .flat files. It checks that it runs at 0x80080000, that x0 points at a device
 * tree (magic d00dfeed), and that the tree's /chosen/bootargs holds the user's command line
 * (RAW_ARGS) and none of skiff's Linux additions ("console="); it prints one line on the UART
 * ("RAW-TEST: pass ..." or "RAW-TEST: FAIL <reason>") and powers off through PSCI SYSTEM_OFF.
 * Built flat with the target's GNU as and ld (Makefile: $(BUILD)/tests/nested/guests/). */
#define UART		0x09000000
#define LOAD_ADDR	0x80080000
#define FDT_MAGIC	0xd00dfeed

	.text
	.globl	_start
_start:
	mov	x19, x0			/* the device tree */
	ldr	x20, =UART
	adr	x1, _start
	ldr	x2, =LOAD_ADDR
	cmp	x1, x2
	b.eq	1f
	adr	x1, f_addr
	b	fail
1:	ldr	w1, [x19]
	rev	w1, w1			/* the header is big-endian */
	ldr	w2, =FDT_MAGIC
	cmp	w1, w2
	b.eq	1f
	adr	x1, f_fdt
	b	fail
1:	ldr	w21, [x19, #4]
	rev	w21, w21		/* totalsize */
	adr	x1, want_args
	bl	find
	cbnz	x0, 1f
	adr	x1, f_args
	b	fail
1:	adr	x1, console
	bl	find
	cbz	x0, 1f
	adr	x1, f_console
	b	fail
1:	adr	x1, pass
	bl	puts
	b	off

/* fail: prints "RAW-TEST: FAIL " and the reason at x1, then powers off. */
fail:
	mov	x22, x1
	adr	x1, s_fail
	bl	puts
	mov	x1, x22
	bl	puts
off:
	ldr	x0, =0x84000008		/* PSCI 0.2 SYSTEM_OFF */
	hvc	#0
1:	wfi
	b	1b

/* puts: the NUL-terminated string at x1, then "\r\n" (clobbers x1, w0). */
puts:
	ldrb	w0, [x1], #1
	cbz	w0, 1f
	strb	w0, [x20]
	b	puts
1:	mov	w0, #'\r'
	strb	w0, [x20]
	mov	w0, #'\n'
	strb	w0, [x20]
	ret

/* find: x0 = 1 when the NUL-terminated string at x1 occurs in the device tree's totalsize
 * bytes, else 0 (clobbers x2-x6). */
find:
	mov	x2, x19			/* where the match may start */
	add	x3, x19, x21		/* the end */
2:	cmp	x2, x3
	b.hs	4f
	mov	x4, x2
	mov	x5, x1
3:	ldrb	w6, [x5], #1
	cbz	w6, 5f			/* the whole string matched */
	cmp	x4, x3
	b.hs	4f
	ldrb	w0, [x4], #1
	cmp	w0, w6
	b.eq	3b
	add	x2, x2, #1
	b	2b
4:	mov	x0, #0
	ret
5:	mov	x0, #1
	ret

	.ltorg
want_args:	.asciz	"skiff.raw=1 two"
console:	.asciz	"console="
pass:		.asciz	"RAW-TEST: pass: at 0x80080000, x0 = a device tree whose bootargs are the user's alone"
s_fail:		.asciz	"RAW-TEST: FAIL "
f_addr:		.asciz	"not loaded at RAM + 0x80000"
f_fdt:		.asciz	"x0 is not a device tree"
f_args:		.asciz	"the device tree has no bootargs 'skiff.raw=1 two'"
f_console:	.asciz	"the device tree has console= (a Linux addition) in it"
