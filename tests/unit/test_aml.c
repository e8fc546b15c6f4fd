/* The AML builder against byte sequences derived by hand from the ACPI 6.5 spec, chapter 20
 * (opcodes), 5.4 (PkgLength) and 6.4 (resource descriptors). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "arch/x86/aml.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static void assert_aml_bytes(struct aml *a, const uint8_t *want, size_t len)
{
	assert_int_equal(aml_finish(a), 0);
	assert_int_equal(a->len, len);
	assert_memory_equal(a->buf, want, len);
}

static void test_pkglength_encode_boundaries(void **state)
{
	static const struct {
		uint32_t value;
		int len;
		uint8_t bytes[4];
	} cases[] = {
	    {0, 1, {0x00}},
	    {63, 1, {0x3f}},
	    {64, 2, {0x40, 0x04}},
	    {65, 2, {0x41, 0x04}},
	    {4095, 2, {0x4f, 0xff}},
	    {4096, 3, {0x80, 0x00, 0x01}},
	    {(1u << 20) - 1, 3, {0x8f, 0xff, 0xff}},
	    {1u << 20, 4, {0xc0, 0x00, 0x00, 0x01}},
	    {(1u << 28) - 1, 4, {0xcf, 0xff, 0xff, 0xff}},
	};
	uint8_t out[4];

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		memset(out, 0xaa, sizeof(out));
		assert_int_equal(aml_pkglength_encode(cases[i].value, out), cases[i].len);
		assert_memory_equal(out, cases[i].bytes, cases[i].len);
	}
	assert_int_equal(aml_pkglength_encode(1u << 28, out), -E2BIG);
}

/* A PkgLength counts its own bytes: contents of 62 bytes fit a 1-byte PkgLength (63), 63 bytes
 * need 2 (65); the same at the 2/3 and 3/4 byte boundaries. */
static void test_pkglength_counts_itself(void **state)
{
	static const struct {
		size_t contents;
		int len;
		uint8_t bytes[4];
	} cases[] = {
	    {62, 1, {0x3f}},
	    {63, 2, {0x41, 0x04}},
	    {4093, 2, {0x4f, 0xff}},
	    {4094, 3, {0x81, 0x00, 0x01}},
	    {(1u << 20) - 4, 3, {0x8f, 0xff, 0xff}},
	    {(1u << 20) - 3, 4, {0xc1, 0x00, 0x00, 0x01}},
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		size_t filler = cases[i].contents - 1; /* after NumElements */
		uint8_t *zeros = calloc(1, filler);
		struct aml a;
		struct aml_pkg pkg;

		assert_non_null(zeros);
		aml_init(&a);
		pkg = aml_package_begin(&a, 0);
		aml_bytes(&a, zeros, filler);
		aml_end(&a, pkg);
		assert_int_equal(aml_finish(&a), 0);
		assert_int_equal(a.len, 1 + cases[i].len + cases[i].contents);
		assert_int_equal(a.buf[0], 0x12); /* PackageOp */
		assert_memory_equal(a.buf + 1, cases[i].bytes, cases[i].len);
		assert_int_equal(a.buf[1 + cases[i].len], 0); /* NumElements */
		aml_free(&a);
		free(zeros);
	}
}

static void test_integer_encodings(void **state)
{
	static const struct {
		uint64_t value;
		int len;
		uint8_t bytes[9];
	} cases[] = {
	    {0, 1, {0x00}},
	    {1, 1, {0x01}},
	    {2, 2, {0x0a, 0x02}},
	    {0xff, 2, {0x0a, 0xff}},
	    {0x100, 3, {0x0b, 0x00, 0x01}},
	    {0xffff, 3, {0x0b, 0xff, 0xff}},
	    {0x10000, 5, {0x0c, 0x00, 0x00, 0x01, 0x00}},
	    {0xd0001000, 5, {0x0c, 0x00, 0x10, 0x00, 0xd0}},
	    {0xffffffff, 5, {0x0c, 0xff, 0xff, 0xff, 0xff}},
	    {0x100000000, 9, {0x0e, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00}},
	    {UINT64_MAX, 9, {0x0e, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}},
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct aml a;

		aml_init(&a);
		aml_integer(&a, cases[i].value);
		assert_aml_bytes(&a, cases[i].bytes, cases[i].len);
		aml_free(&a);
	}
}

/* Name(_S5_, Package(4) { 5, 0, 0, 0 }):
 * NameOp '_S5_' PackageOp PkgLength(7: itself, NumElements, 5 bytes) NumElements(4)
 * BytePrefix 5, ZeroOp x3. */
static void test_name_package(void **state)
{
	static const uint8_t want[] = {0x08, '_',  'S',	 '5',  '_',  0x12, 0x07,
				       0x04, 0x0a, 0x05, 0x00, 0x00, 0x00};
	struct aml a;
	struct aml_pkg pkg;

	aml_init(&a);
	aml_name(&a, "_S5_");
	pkg = aml_package_begin(&a, 4);
	aml_integer(&a, 5);
	aml_integer(&a, 0);
	aml_integer(&a, 0);
	aml_integer(&a, 0);
	aml_end(&a, pkg);
	assert_aml_bytes(&a, want, sizeof(want));
	aml_free(&a);
}

static void test_name_string_and_eisaid(void **state)
{
	static const uint8_t want[] = {
	    /* Name(_HID, "LNRO0005") */
	    0x08, '_', 'H', 'I', 'D', 0x0d, 'L', 'N', 'R', 'O', '0', '0', '0', '5', 0x00,
	    /* Name(_HID, EISAID("PNP0501")): 'P' 'N' 'P' = 16 14 16 in 5 bits each -> 0x41d0 */
	    0x08, '_', 'H', 'I', 'D', 0x0c, 0x41, 0xd0, 0x05, 0x01,
	    /* Name(\_UID, 0x1234) with a root prefix */
	    0x08, '\\', '_', 'U', 'I', 'D', 0x0b, 0x34, 0x12,
	    /* EISAID("PNP0B00"), EISAID("PNP0C02") */
	    0x0c, 0x41, 0xd0, 0x0b, 0x00, 0x0c, 0x41, 0xd0, 0x0c, 0x02};
	struct aml a;

	aml_init(&a);
	aml_name_string(&a, "_HID", "LNRO0005");
	aml_name_eisaid(&a, "_HID", "PNP0501");
	aml_name_integer(&a, "\\_UID", 0x1234);
	aml_eisaid(&a, "PNP0B00");
	aml_eisaid(&a, "PNP0C02");
	assert_aml_bytes(&a, want, sizeof(want));
	aml_free(&a);
}

/* Scope(\_SB_) { Device(COM1) { Name(_HID, EISAID("PNP0501"))
 *   Name(_CRS, ResourceTemplate() { IO(Decode16, 0x3f8, 0x3f8, 1, 8)
 *     Interrupt(ResourceConsumer, Edge, ActiveHigh, Exclusive) { 4 } }) } } */
static void test_scope_device_resources(void **state)
{
	static const uint8_t want[] = {
	    0x10, 0x33, '\\', '_',  'S',  'B',	'_',			/* Scope, PkgLength 51 */
	    0x5b, 0x82, 0x2b, 'C',  'O',  'M',	'1',			/* Device, PkgLength 43 */
	    0x08, '_',	'H',  'I',  'D',  0x0c, 0x41, 0xd0, 0x05, 0x01, /* _HID */
	    0x08, '_',	'C',  'R',  'S',				/* _CRS */
	    0x11, 0x16, 0x0a, 0x13,			    /* Buffer, PkgLength 22, size 19 */
	    0x47, 0x01, 0xf8, 0x03, 0xf8, 0x03, 0x01, 0x08, /* IO */
	    0x89, 0x06, 0x00, 0x03, 0x01, 0x04, 0x00, 0x00, 0x00, /* Extended Interrupt */
	    0x79, 0xa9,						  /* End Tag, checksum */
	};
	struct aml a;
	struct aml_pkg sb, dev, crs;
	uint8_t sum = 0;

	aml_init(&a);
	sb = aml_scope_begin(&a, "\\_SB_");
	dev = aml_device_begin(&a, "COM1");
	aml_name_eisaid(&a, "_HID", "PNP0501");
	aml_name(&a, "_CRS");
	crs = aml_resource_template_begin(&a);
	aml_io(&a, 0x3f8, 8);
	aml_interrupt(&a, AML_IRQ_CONSUMER | AML_IRQ_EDGE, 4);
	aml_end(&a, crs);
	aml_end(&a, dev);
	aml_end(&a, sb);
	assert_aml_bytes(&a, want, sizeof(want));
	/* The resource template's bytes (from IO to the End Tag) sum to zero. */
	for (size_t i = sizeof(want) - 19; i < sizeof(want); i++)
		sum += a.buf[i];
	assert_int_equal(sum, 0);
	aml_free(&a);
}

static void test_resource_descriptors(void **state)
{
	static const uint8_t want[] = {
	    /* Memory32Fixed(ReadWrite, 0xd0000000, 0x1000) */
	    0x86, 0x09, 0x00, 0x01, 0x00, 0x00, 0x00, 0xd0, 0x00, 0x10, 0x00, 0x00,
	    /* Memory32Fixed(ReadOnly, 0x12345678, 0x200) */
	    0x86, 0x09, 0x00, 0x00, 0x78, 0x56, 0x34, 0x12, 0x00, 0x02, 0x00, 0x00,
	    /* Interrupt(ResourceConsumer, Level, ActiveLow, Shared) { 0x10203 } */
	    0x89, 0x06, 0x00, 0x0d, 0x01, 0x03, 0x02, 0x01, 0x00};
	struct aml a;

	aml_init(&a);
	aml_memory32_fixed(&a, true, 0xd0000000, 0x1000);
	aml_memory32_fixed(&a, false, 0x12345678, 0x200);
	aml_interrupt(&a, AML_IRQ_CONSUMER | AML_IRQ_ACTIVE_LOW | AML_IRQ_SHARED, 0x10203);
	assert_aml_bytes(&a, want, sizeof(want));
	aml_free(&a);
}

/* The first error sticks: later calls add nothing and aml_finish() reports it. */
static void test_sticky_error(void **state)
{
	static const char *const bad_names[] = {"com1", "_SB", "_SB_X", "1ABC", "\\\\_SB_", ""};

	for (size_t i = 0; i < ARRAY_SIZE(bad_names); i++) {
		struct aml a;
		struct aml_pkg dev;
		size_t len;

		aml_init(&a);
		aml_name_integer(&a, "GOOD", 1);
		dev = aml_device_begin(&a, bad_names[i]);
		assert_int_equal(a.err, -EINVAL);
		len = a.len;
		aml_name_integer(&a, "_UID", 0);
		aml_eisaid(&a, "PNP0501");
		aml_end(&a, dev);
		assert_int_equal(a.len, len);
		assert_int_equal(aml_finish(&a), -EINVAL);
		aml_free(&a);
	}
}

/* Only the first error is kept, whatever follows. */
static void test_first_error_wins(void **state)
{
	struct aml a;

	aml_init(&a);
	/* More than a PkgLength can describe: refused before anything is read or allocated. */
	aml_bytes(&a, "", (size_t)1 << 28);
	assert_int_equal(a.err, -E2BIG);
	assert_int_equal(a.len, 0);
	aml_name(&a, "bad!");
	aml_scope_begin(&a, "_SB_");
	assert_int_equal(aml_finish(&a), -E2BIG);
	aml_free(&a);
}

static void test_bad_values(void **state)
{
	static const char *const bad_ids[] = {"pnp0501", "PNP050", "PNP05011", "PNP05G1",
					      "P1P0501"};
	struct aml a;

	for (size_t i = 0; i < ARRAY_SIZE(bad_ids); i++) {
		aml_init(&a);
		aml_eisaid(&a, bad_ids[i]);
		assert_int_equal(aml_finish(&a), -EINVAL);
		aml_free(&a);
	}
	aml_init(&a);
	aml_string(&a, "caf\xc3\xa9");
	assert_int_equal(aml_finish(&a), -EINVAL);
	aml_free(&a);
}

static void test_unbalanced_ends(void **state)
{
	struct aml a;
	struct aml_pkg outer, inner;

	/* A begin without its end. */
	aml_init(&a);
	aml_scope_begin(&a, "_SB_");
	assert_int_equal(aml_finish(&a), -EINVAL);
	aml_free(&a);

	/* Ends out of order. */
	aml_init(&a);
	outer = aml_scope_begin(&a, "_SB_");
	inner = aml_device_begin(&a, "DEV0");
	aml_end(&a, outer);
	aml_end(&a, inner);
	assert_int_equal(aml_finish(&a), -EINVAL);
	aml_free(&a);
}

/* Method(ADDR, 0, NotSerialized) { Return(Package(2) { 0xfe000, 0 }) }, and
 * Method(_EVT, 1, NotSerialized) { Notify(\_SB_.VGEN, 0x80) }: MethodOp PkgLength NameSeg
 * MethodFlags (ArgCount in bits 0-2); ReturnOp and its object; NotifyOp, a NameString with
 * DualNamePrefix (0x2e), BytePrefix 0x80. */
static void test_method_return_notify(void **state)
{
	static const uint8_t want[] = {
	    0x14, 0x10, 'A',  'D',  'D',  'R',	0x00,		    /* Method, PkgLength 16 */
	    0xa4,						    /* Return */
	    0x12, 0x08, 0x02, 0x0c, 0x00, 0xe0, 0x0f, 0x00, 0x00, /* Package(2) */
	    0x14, 0x13, '_',  'E',  'V',  'T',	0x01,		    /* Method, PkgLength 19 */
	    0x86, 0x5c, 0x2e, '_',  'S',  'B',	'_',  'V', 'G', 'E', 'N', 0x0a, 0x80,
	    /* a three-segment path: MultiNamePrefix (0x2f) and the count */
	    0x86, 0x5c, 0x2f, 0x03, 'A',  '_',	'_',  '_', 'B', '_', '_', '_', 'C', '_', '_', '_',
	    0x01,
	};
	struct aml a;
	struct aml_pkg m, pkg;

	aml_init(&a);
	m = aml_method_begin(&a, "ADDR", 0);
	aml_return(&a);
	pkg = aml_package_begin(&a, 2);
	aml_integer(&a, 0xfe000);
	aml_integer(&a, 0);
	aml_end(&a, pkg);
	aml_end(&a, m);
	m = aml_method_begin(&a, "_EVT", 1);
	aml_notify(&a, "\\_SB_.VGEN", 0x80);
	aml_end(&a, m);
	aml_notify(&a, "\\A___.B___.C___", 1);
	assert_aml_bytes(&a, want, sizeof(want));
	aml_free(&a);
}

/* Paths with a short or empty segment, and a method of more than 7 arguments, are errors. */
static void test_bad_paths_and_methods(void **state)
{
	static const char *const bad[] = {"\\_SB_.VG", "_SB_..VGEN", "_SB_.", ".VGEN", "_SB_.vgen"};
	struct aml a;

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		aml_init(&a);
		aml_notify(&a, bad[i], 0x80);
		assert_int_equal(aml_finish(&a), -EINVAL);
		aml_free(&a);
	}
	aml_init(&a);
	aml_end(&a, aml_method_begin(&a, "MTHD", 8));
	assert_int_equal(aml_finish(&a), -EINVAL);
	aml_free(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_pkglength_encode_boundaries),
	    cmocka_unit_test(test_pkglength_counts_itself),
	    cmocka_unit_test(test_integer_encodings),
	    cmocka_unit_test(test_name_package),
	    cmocka_unit_test(test_name_string_and_eisaid),
	    cmocka_unit_test(test_scope_device_resources),
	    cmocka_unit_test(test_resource_descriptors),
	    cmocka_unit_test(test_sticky_error),
	    cmocka_unit_test(test_first_error_wins),
	    cmocka_unit_test(test_bad_values),
	    cmocka_unit_test(test_unbalanced_ends),
	    cmocka_unit_test(test_method_return_notify),
	    cmocka_unit_test(test_bad_paths_and_methods),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
