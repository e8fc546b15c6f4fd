/* The ACPI tables as firmware gets them (arch/x86/fw_cfg_items.h): the files etc/acpi/rsdp,
 * etc/acpi/tables and etc/table-loader read back through fw_cfg's registers, and the loader's
 * script run the way SeaBIOS runs it (place each file, add pointers, fix checksums): the result
 * must be a valid RSDP -> XSDT -> FADT -> DSDT, MADT, MCFG chain at the places chosen. Also
 * the script's encoding (devices/fw_cfg_loader.h) and its refusals. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "arch/x86/acpi.h"
#include "arch/x86/fw_cfg_items.h"
#include "base/guest_mem.h"
#include "devices/fw_cfg.h"
#include "devices/fw_cfg_loader.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define RSDP_BASE   0xf5a0u /* where this test's "firmware" places each file */
#define TABLES_BASE 0x40000u
#define MEM_SIZE    0x100000u

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const uint8_t *p)
{
	return le32(p) | (uint64_t)le32(p + 4) << 32;
}

static uint8_t sum(const uint8_t *p, size_t n)
{
	uint8_t s = 0;

	while (n--)
		s += *p++;
	return s;
}

static void select_key(struct fw_cfg *f, uint16_t key)
{
	uint8_t b[2] = {key & 0xff, key >> 8};

	fw_cfg_pio_ops.write(f, 0, b, 2);
}

static void read_bytes(struct fw_cfg *f, void *out, size_t n)
{
	for (size_t i = 0; i < n; i++)
		fw_cfg_pio_ops.read(f, 1, (uint8_t *)out + i, 1);
}

/* The named file's contents (malloc'ed) and size, through the directory. */
static uint8_t *read_file(struct fw_cfg *f, const char *name, uint32_t *size)
{
	uint8_t count[4], e[64], *buf;
	uint32_t n;

	select_key(f, FW_CFG_FILE_DIR);
	read_bytes(f, count, 4);
	n = (uint32_t)count[0] << 24 | count[1] << 16 | count[2] << 8 | count[3];
	for (uint32_t i = 0; i < n; i++) {
		read_bytes(f, e, 64);
		if (strcmp((char *)e + 8, name) != 0)
			continue;
		*size = (uint32_t)e[0] << 24 | e[1] << 16 | e[2] << 8 | e[3];
		buf = malloc(*size);
		select_key(f, (uint16_t)(e[4] << 8 | e[5]));
		read_bytes(f, buf, *size);
		return buf;
	}
	fail_msg("no file %s", name);
	return NULL;
}

/* Runs the script over `mem` as SeaBIOS's romfile loader does. */
static void run_loader(const uint8_t *script, uint32_t len, uint8_t *mem, const uint8_t *rsdp,
		       uint32_t rsdp_len, const uint8_t *tables, uint32_t tables_len)
{
	bool placed_rsdp = false, placed_tables = false;

	assert_int_equal(len % FW_CFG_LOADER_ENTRY_SIZE, 0);
	for (const uint8_t *e = script; e < script + len; e += FW_CFG_LOADER_ENTRY_SIZE) {
		const char *name = (const char *)e + 4;
		uint32_t base;
		uint8_t *dst;

		switch (le32(e)) {
		case FW_CFG_LOADER_ALLOCATE:
			if (!strcmp(name, "etc/acpi/rsdp")) {
				assert_int_equal(e[64], FW_CFG_LOADER_ZONE_FSEG);
				memcpy(mem + RSDP_BASE, rsdp, rsdp_len);
				placed_rsdp = true;
			} else {
				assert_string_equal(name, "etc/acpi/tables");
				assert_int_equal(e[64], FW_CFG_LOADER_ZONE_HIGH);
				assert_int_equal(TABLES_BASE % le32(e + 60), 0);
				memcpy(mem + TABLES_BASE, tables, tables_len);
				placed_tables = true;
			}
			break;
		case FW_CFG_LOADER_ADD_POINTER: {
			uint32_t off = le32(e + 116);
			uint8_t size = e[120];
			uint64_t v = 0;

			assert_string_equal((const char *)e + 60, "etc/acpi/tables");
			assert_true(placed_tables);
			dst =
			    mem + (!strcmp(name, "etc/acpi/rsdp") ? RSDP_BASE : TABLES_BASE) + off;
			memcpy(&v, dst, size);
			v += TABLES_BASE;
			memcpy(dst, &v, size);
			break;
		}
		case FW_CFG_LOADER_ADD_CHECKSUM:
			base = !strcmp(name, "etc/acpi/rsdp") ? RSDP_BASE : TABLES_BASE;
			assert_true(base == RSDP_BASE ? placed_rsdp : placed_tables);
			mem[base + le32(e + 60)] -= sum(mem + base + le32(e + 64), le32(e + 68));
			break;
		default:
			fail_msg("unknown command %u", le32(e));
		}
	}
	assert_true(placed_rsdp && placed_tables);
}

static void check_table(const uint8_t *mem, uint64_t addr, const char *sig)
{
	assert_true(addr >= TABLES_BASE && addr < MEM_SIZE);
	assert_memory_equal(mem + addr, sig, 4);
	assert_int_equal(sum(mem + addr, le32(mem + addr + 4)), 0);
}

static void test_tables_through_the_loader(void **state)
{
	struct guest_region r = {.gpa = 0, .size = MEM_SIZE};
	struct guest_mem gm;
	struct acpi_pci pci = {.ecam_base = 0xe0000000,
			       .ecam_size = 1 << 20,
			       .mmio_base = 0xf0000000,
			       .mmio_size = 0x0ec00000,
			       .cf8 = true};
	struct acpi_config acpi = {.nr_cpus = 2, .pci = &pci};
	uint8_t *mem = calloc(1, MEM_SIZE), *rsdp, *tables, *script, *fadt;
	uint32_t rsdp_len, tables_len, script_len, xsdt_len;
	uint64_t xsdt;
	struct fw_cfg *f;
	uint8_t v[2];

	assert_int_equal(guest_mem_map(&gm, &r, 1), 0);
	f = fw_cfg_create(&gm);
	assert_int_equal(x86_fw_cfg_add_firmware(f, &acpi), 0);
	select_key(f, FW_CFG_NOGRAPHIC);
	read_bytes(f, v, 2);
	assert_int_equal(v[0], 1);
	select_key(f, FW_CFG_BOOT_MENU);
	read_bytes(f, v, 2);
	assert_int_equal(v[0] | v[1], 0);

	rsdp = read_file(f, "etc/acpi/rsdp", &rsdp_len);
	tables = read_file(f, "etc/acpi/tables", &tables_len);
	script = read_file(f, "etc/table-loader", &script_len);
	assert_int_equal(rsdp_len, ACPI_RSDP_SIZE);
	assert_memory_equal(rsdp, "RSD PTR ", 8);
	run_loader(script, script_len, mem, rsdp, rsdp_len, tables, tables_len);

	assert_int_equal(sum(mem + RSDP_BASE, 20), 0);
	assert_int_equal(sum(mem + RSDP_BASE, 36), 0);
	xsdt = le64(mem + RSDP_BASE + ACPI_RSDP_XSDT_OFFSET);
	assert_int_equal(xsdt, TABLES_BASE);
	check_table(mem, xsdt, "XSDT");
	xsdt_len = le32(mem + xsdt + 4);
	assert_int_equal(xsdt_len, 36 + 3 * 8);
	check_table(mem, le64(mem + xsdt + 36), "FACP");
	check_table(mem, le64(mem + xsdt + 44), "APIC");
	check_table(mem, le64(mem + xsdt + 52), "MCFG");
	fadt = mem + le64(mem + xsdt + 36);
	check_table(mem, le32(fadt + 40), "DSDT");
	check_table(mem, le64(fadt + 140), "DSDT");

	free(rsdp);
	free(tables);
	free(script);
	free(mem);
	fw_cfg_destroy(f);
	guest_mem_unmap(&gm);
}

static void test_script_encoding_and_refusals(void **state)
{
	struct fw_cfg_loader l;
	char longname[FW_CFG_MAX_FILE_NAME + 1];

	fw_cfg_loader_init(&l);
	fw_cfg_loader_allocate(&l, "a", 64, FW_CFG_LOADER_ZONE_HIGH);
	fw_cfg_loader_add_pointer(&l, "a", "b", 0x1234, 8);
	fw_cfg_loader_add_checksum(&l, "a", 9, 0x10, 0x20);
	assert_int_equal(fw_cfg_loader_finish(&l), 0);
	assert_int_equal(l.len, 3 * FW_CFG_LOADER_ENTRY_SIZE);
	assert_int_equal(le32(l.buf), FW_CFG_LOADER_ALLOCATE);
	assert_string_equal((char *)l.buf + 4, "a");
	assert_int_equal(le32(l.buf + 60), 64);
	assert_int_equal(l.buf[64], FW_CFG_LOADER_ZONE_HIGH);
	assert_int_equal(le32(l.buf + 128), FW_CFG_LOADER_ADD_POINTER);
	assert_string_equal((char *)l.buf + 128 + 60, "b");
	assert_int_equal(le32(l.buf + 128 + 116), 0x1234);
	assert_int_equal(l.buf[128 + 120], 8);
	assert_int_equal(le32(l.buf + 256), FW_CFG_LOADER_ADD_CHECKSUM);
	assert_int_equal(le32(l.buf + 256 + 60), 9);
	assert_int_equal(le32(l.buf + 256 + 64), 0x10);
	assert_int_equal(le32(l.buf + 256 + 68), 0x20);
	/* A name that does not fit its 56 bytes (with the NUL) spoils the script. */
	memset(longname, 'x', FW_CFG_MAX_FILE_NAME);
	longname[FW_CFG_MAX_FILE_NAME] = 0;
	fw_cfg_loader_allocate(&l, longname, 64, FW_CFG_LOADER_ZONE_HIGH);
	assert_int_equal(fw_cfg_loader_finish(&l), -EINVAL);
	fw_cfg_loader_free(&l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_tables_through_the_loader),
	    cmocka_unit_test(test_script_encoding_and_refusals),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
