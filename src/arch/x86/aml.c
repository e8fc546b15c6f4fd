#include "arch/x86/aml.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Opcodes and prefixes, ACPI 6.5 section 20.3. */
#define AML_ZERO_OP	  0x00
#define AML_ONE_OP	  0x01
#define AML_NAME_OP	  0x08
#define AML_BYTE_PREFIX	  0x0a
#define AML_WORD_PREFIX	  0x0b
#define AML_DWORD_PREFIX  0x0c
#define AML_STRING_PREFIX 0x0d
#define AML_QWORD_PREFIX  0x0e
#define AML_SCOPE_OP	  0x10
#define AML_BUFFER_OP	  0x11
#define AML_PACKAGE_OP	  0x12
#define AML_EXT_OP_PREFIX 0x5b
#define AML_EXT_DEVICE_OP 0x82
#define AML_ROOT_CHAR	  0x5c
#define AML_DUAL_NAME_PREFIX  0x2e
#define AML_MULTI_NAME_PREFIX 0x2f
#define AML_METHOD_OP	  0x14
#define AML_NOTIFY_OP	  0x86
#define AML_RETURN_OP	  0xa4

/* Resource descriptor tags, ACPI 6.5 section 6.4. */
#define AML_RES_IO	       0x47 /* small item 0x08, 7 bytes follow */
#define AML_RES_END_TAG	       0x79 /* small item 0x0f, 1 byte follows */
#define AML_RES_MEMORY32_FIXED 0x86
#define AML_RES_EXT_IRQ	       0x89
#define AML_RES_DWORD_ADDRESS  0x87
#define AML_RES_WORD_ADDRESS   0x88

/* The largest PkgLength; nothing skiff builds comes close. */
#define AML_MAX_LEN ((1u << 28) - 1)

void aml_init(struct aml *a)
{
	memset(a, 0, sizeof(*a));
}

void aml_free(struct aml *a)
{
	free(a->buf);
	memset(a, 0, sizeof(*a));
}

static void aml_fail(struct aml *a, int err)
{
	if (!a->err)
		a->err = err;
}

int aml_finish(struct aml *a)
{
	if (!a->err && a->depth != 0)
		aml_fail(a, -EINVAL);
	return a->err;
}

/* Room for `extra` more bytes, or false with the error recorded. */
static bool aml_reserve(struct aml *a, size_t extra)
{
	size_t need, cap;
	uint8_t *p;

	if (a->err)
		return false;
	if (extra > AML_MAX_LEN - a->len) {
		aml_fail(a, -E2BIG);
		return false;
	}
	need = a->len + extra;
	if (need <= a->cap)
		return true;
	for (cap = a->cap ? a->cap : 256; cap < need; cap *= 2)
		;
	p = realloc(a->buf, cap);
	if (!p) {
		aml_fail(a, -ENOMEM);
		return false;
	}
	a->buf = p;
	a->cap = cap;
	return true;
}

void aml_bytes(struct aml *a, const void *data, size_t len)
{
	if (!aml_reserve(a, len))
		return;
	memcpy(a->buf + a->len, data, len);
	a->len += len;
}

static void aml_byte(struct aml *a, uint8_t b)
{
	aml_bytes(a, &b, 1);
}

static void aml_insert(struct aml *a, size_t pos, const uint8_t *data, size_t len)
{
	if (!aml_reserve(a, len))
		return;
	memmove(a->buf + pos + len, a->buf + pos, a->len - pos);
	memcpy(a->buf + pos, data, len);
	a->len += len;
}

static void put_le(uint8_t *out, uint64_t value, int bytes)
{
	for (int i = 0; i < bytes; i++)
		out[i] = (uint8_t)(value >> (8 * i));
}

int aml_pkglength_encode(uint32_t value, uint8_t out[4])
{
	int follow;

	if (value < 0x40) {
		out[0] = (uint8_t)value;
		return 1;
	}
	if (value < 0x1000)
		follow = 1;
	else if (value < 0x100000)
		follow = 2;
	else if (value <= AML_MAX_LEN)
		follow = 3;
	else
		return -E2BIG;
	/* Bits 7-6: count of following bytes; bits 3-0: the low nibble; the following bytes hold
	 * the rest, least significant first. */
	out[0] = (uint8_t)((follow << 6) | (value & 0xf));
	put_le(out + 1, value >> 4, follow);
	return follow + 1;
}

/* PkgLength counts its own bytes, so a longer encoding can itself push the value over the next
 * boundary: try the sizes in order. */
static int pkglength_for_contents(size_t contents, uint8_t out[4])
{
	static const uint32_t limit[] = {0x40, 0x1000, 0x100000, AML_MAX_LEN + 1};

	for (int n = 1; n <= 4; n++) {
		if (contents + n < limit[n - 1])
			return aml_pkglength_encode((uint32_t)(contents + n), out);
	}
	return -E2BIG;
}

static int encode_integer(uint64_t value, uint8_t out[9])
{
	if (value == 0) {
		out[0] = AML_ZERO_OP;
		return 1;
	}
	if (value == 1) {
		out[0] = AML_ONE_OP;
		return 1;
	}
	if (value <= UINT8_MAX) {
		out[0] = AML_BYTE_PREFIX;
		put_le(out + 1, value, 1);
		return 2;
	}
	if (value <= UINT16_MAX) {
		out[0] = AML_WORD_PREFIX;
		put_le(out + 1, value, 2);
		return 3;
	}
	if (value <= UINT32_MAX) {
		out[0] = AML_DWORD_PREFIX;
		put_le(out + 1, value, 4);
		return 5;
	}
	out[0] = AML_QWORD_PREFIX;
	put_le(out + 1, value, 8);
	return 9;
}

void aml_integer(struct aml *a, uint64_t value)
{
	uint8_t enc[9];

	aml_bytes(a, enc, encode_integer(value, enc));
}

void aml_string(struct aml *a, const char *s)
{
	for (const char *c = s; *c; c++) {
		if ((unsigned char)*c > 0x7f) {
			aml_fail(a, -EINVAL);
			return;
		}
	}
	aml_byte(a, AML_STRING_PREFIX);
	aml_bytes(a, s, strlen(s) + 1);
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

void aml_eisaid(struct aml *a, const char *id)
{
	uint32_t value = 0;

	if (strlen(id) != 7) {
		aml_fail(a, -EINVAL);
		return;
	}
	/* Three letters in 5 bits each ('A' = 1), big-endian, then four hex digits; the DWord is
	 * stored so that its bytes read in that order. */
	for (int i = 0; i < 3; i++) {
		if (id[i] < 'A' || id[i] > 'Z') {
			aml_fail(a, -EINVAL);
			return;
		}
		value = (value << 5) | (uint32_t)(id[i] - 'A' + 1);
	}
	for (int i = 3; i < 7; i++) {
		int d = hex_digit(id[i]);

		if (d < 0) {
			aml_fail(a, -EINVAL);
			return;
		}
		value = (value << 4) | (uint32_t)d;
	}
	aml_byte(a, AML_DWORD_PREFIX);
	aml_byte(a, (uint8_t)(value >> 24));
	aml_byte(a, (uint8_t)(value >> 16));
	aml_byte(a, (uint8_t)(value >> 8));
	aml_byte(a, (uint8_t)value);
}

static bool nameseg_valid(const char *s)
{
	if (strlen(s) != 4)
		return false;
	for (int i = 0; i < 4; i++) {
		char c = s[i];
		bool ok = (c >= 'A' && c <= 'Z') || c == '_' || (i > 0 && c >= '0' && c <= '9');

		if (!ok)
			return false;
	}
	return true;
}

/* NameString: an optional root prefix and a path of NameSegs separated by dots
 * ("\\_SB_.VGEN"): one segment as it is, two after DualNamePrefix, more after MultiNamePrefix
 * and their count. */
#define AML_MAX_NAME_SEGS 8

static void aml_namestring(struct aml *a, const char *name)
{
	bool root = name[0] == '\\';
	const char *p = name + root;
	char segs[AML_MAX_NAME_SEGS][5];
	int n = 0;

	for (;;) {
		size_t len = strcspn(p, ".");

		if (n == AML_MAX_NAME_SEGS || len != 4) {
			aml_fail(a, -EINVAL);
			return;
		}
		memcpy(segs[n], p, 4);
		segs[n][4] = 0;
		if (!nameseg_valid(segs[n])) {
			aml_fail(a, -EINVAL);
			return;
		}
		n++;
		p += len;
		if (!*p)
			break;
		p++; /* the dot */
	}
	if (root)
		aml_byte(a, AML_ROOT_CHAR);
	if (n == 2)
		aml_byte(a, AML_DUAL_NAME_PREFIX);
	else if (n > 2) {
		aml_byte(a, AML_MULTI_NAME_PREFIX);
		aml_byte(a, (uint8_t)n);
	}
	for (int i = 0; i < n; i++)
		aml_bytes(a, segs[i], 4);
}

void aml_name(struct aml *a, const char *name)
{
	aml_byte(a, AML_NAME_OP);
	aml_namestring(a, name);
}

void aml_name_integer(struct aml *a, const char *name, uint64_t value)
{
	aml_name(a, name);
	aml_integer(a, value);
}

void aml_name_string(struct aml *a, const char *name, const char *s)
{
	aml_name(a, name);
	aml_string(a, s);
}

void aml_name_eisaid(struct aml *a, const char *name, const char *id)
{
	aml_name(a, name);
	aml_eisaid(a, id);
}

static struct aml_pkg pkg_open(struct aml *a, bool resource_template)
{
	return (struct aml_pkg){
	    .start = a->len,
	    .depth = ++a->depth,
	    .resource_template = resource_template,
	};
}

struct aml_pkg aml_scope_begin(struct aml *a, const char *name)
{
	struct aml_pkg pkg;

	aml_byte(a, AML_SCOPE_OP);
	pkg = pkg_open(a, false);
	aml_namestring(a, name);
	return pkg;
}

struct aml_pkg aml_device_begin(struct aml *a, const char *name)
{
	struct aml_pkg pkg;

	aml_byte(a, AML_EXT_OP_PREFIX);
	aml_byte(a, AML_EXT_DEVICE_OP);
	pkg = pkg_open(a, false);
	aml_namestring(a, name);
	return pkg;
}

struct aml_pkg aml_method_begin(struct aml *a, const char *name, uint8_t nr_args)
{
	struct aml_pkg pkg;

	if (nr_args > 7)
		aml_fail(a, -EINVAL);
	aml_byte(a, AML_METHOD_OP);
	pkg = pkg_open(a, false);
	aml_namestring(a, name);
	/* MethodFlags: ArgCount in bits 0-2; NotSerialized, SyncLevel 0. */
	aml_byte(a, nr_args & 7);
	return pkg;
}

void aml_return(struct aml *a)
{
	aml_byte(a, AML_RETURN_OP);
}

void aml_notify(struct aml *a, const char *target, uint64_t value)
{
	aml_byte(a, AML_NOTIFY_OP);
	aml_namestring(a, target);
	aml_integer(a, value);
}

struct aml_pkg aml_package_begin(struct aml *a, uint8_t nr_elements)
{
	struct aml_pkg pkg;

	aml_byte(a, AML_PACKAGE_OP);
	pkg = pkg_open(a, false);
	aml_byte(a, nr_elements);
	return pkg;
}

struct aml_pkg aml_resource_template_begin(struct aml *a)
{
	aml_byte(a, AML_BUFFER_OP);
	/* BufferSize and PkgLength are inserted by aml_end(). */
	return pkg_open(a, true);
}

void aml_end(struct aml *a, struct aml_pkg pkg)
{
	uint8_t enc[9];
	int n;

	if (a->err)
		return;
	if (pkg.depth != a->depth || pkg.start > a->len) {
		aml_fail(a, -EINVAL);
		return;
	}
	a->depth--;
	if (pkg.resource_template) {
		uint8_t sum = AML_RES_END_TAG;

		for (size_t i = pkg.start; i < a->len; i++)
			sum += a->buf[i];
		/* The End Tag's checksum makes the bytes of the whole template sum to zero. */
		aml_byte(a, AML_RES_END_TAG);
		aml_byte(a, (uint8_t)-sum);
		aml_insert(a, pkg.start, enc, encode_integer(a->len - pkg.start, enc));
	}
	n = pkglength_for_contents(a->len - pkg.start, enc);
	if (n < 0) {
		aml_fail(a, n);
		return;
	}
	aml_insert(a, pkg.start, enc, n);
}

void aml_memory32_fixed(struct aml *a, bool writable, uint32_t base, uint32_t size)
{
	uint8_t d[12] = {AML_RES_MEMORY32_FIXED, 9, 0, writable ? 1 : 0};

	put_le(d + 4, base, 4);
	put_le(d + 8, size, 4);
	aml_bytes(a, d, sizeof(d));
}

void aml_io(struct aml *a, uint16_t base, uint8_t len)
{
	/* Information bit 0: the device decodes all 16 address bits. */
	uint8_t d[8] = {AML_RES_IO, 1};

	put_le(d + 2, base, 2); /* minimum base */
	put_le(d + 4, base, 2); /* maximum base */
	d[6] = 1;		/* alignment */
	d[7] = len;
	aml_bytes(a, d, sizeof(d));
}

/* 6.4.3.5.3 (Word) and 6.4.3.5.2 (DWord) Address Space Descriptors. General flags 0x0c:
 * minimum and maximum fixed, positive decode, a bridge producing the range for its children. */
#define ADDR_SPACE_MEMORY   0
#define ADDR_SPACE_BUS	    2
#define ADDR_FLAGS_FIXED    0x0c

void aml_word_bus_number(struct aml *a, uint16_t min, uint16_t max)
{
	uint8_t d[16] = {AML_RES_WORD_ADDRESS, 13, 0, ADDR_SPACE_BUS, ADDR_FLAGS_FIXED, 0};

	put_le(d + 8, min, 2);
	put_le(d + 10, max, 2);
	put_le(d + 14, (uint32_t)max - min + 1, 2); /* length; granularity, translation 0 */
	aml_bytes(a, d, sizeof(d));
}

void aml_dword_memory(struct aml *a, uint32_t min, uint32_t max)
{
	/* Type-specific flags: read-write, non-cacheable. */
	uint8_t d[26] = {AML_RES_DWORD_ADDRESS, 23, 0, ADDR_SPACE_MEMORY, ADDR_FLAGS_FIXED, 1};

	put_le(d + 10, min, 4);
	put_le(d + 14, max, 4);
	put_le(d + 22, max - min + 1, 4);
	aml_bytes(a, d, sizeof(d));
}

void aml_interrupt(struct aml *a, unsigned int flags, uint32_t gsi)
{
	/* Length 6: the flags, a table of one interrupt, the interrupt. */
	uint8_t d[9] = {AML_RES_EXT_IRQ, 6, 0, (uint8_t)(flags & 0xf), 1};

	put_le(d + 5, gsi, 4);
	aml_bytes(a, d, sizeof(d));
}
