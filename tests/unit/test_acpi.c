/* skiff's ACPI tables, built into anonymous guest memory and read back as a guest would: from
 * the RSDP found by scanning, through the XSDT, to the FADT, MADT and DSDT. When iasl (Debian's
 * acpica-tools) is installed, the tables are also disassembled by it. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "arch/x86/acpi.h"
#include "arch/x86/layout.h"
#include "base/guest_mem.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Offsets the tests read, from the ACPI 6.5 spec rather than from acpi.c's structs. */
#define HDR_LEN		    4
#define HDR_REVISION	    8
#define HDR_SIZE	    36
#define FADT_DSDT	    40
#define FADT_IAPC_BOOT_ARCH 109
#define FADT_CENTURY 108
#define FADT_FLAGS	    112
#define FADT_RESET_REG	    116
#define FADT_RESET_VALUE    128
#define FADT_X_DSDT	    140
#define FADT_SLEEP_CONTROL  244
#define FADT_SLEEP_STATUS   256
#define MADT_LAPIC_ADDR	    36
#define MADT_FLAGS	    40
#define MADT_ENTRIES	    44

struct fixture {
	struct guest_mem mem;
	uint64_t rsdp;
	char tmpdir[32]; /* iasl's files, removed by teardown */
};

static int setup(void **state)
{
	/* Low memory up to 1 MiB, as a guest has it. */
	const struct guest_region layout[] = {{.gpa = 0, .size = X86_ACPI_END}};
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f || guest_mem_map(&f->mem, layout, 1))
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	guest_mem_unmap(&f->mem);
	if (f->tmpdir[0] && !getenv("SKIFF_KEEP_ACPI")) {
		char cmd[64];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", f->tmpdir);
		if (system(cmd) != 0)
			return -1;
	}
	free(f);
	return 0;
}

static uint32_t le32(const uint8_t *p)
{
	return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const uint8_t *p)
{
	return le32(p) | (uint64_t)le32(p + 4) << 32;
}

static uint8_t sum_bytes(const uint8_t *p, size_t len)
{
	uint8_t sum = 0;

	for (size_t i = 0; i < len; i++)
		sum += p[i];
	return sum;
}

static const uint8_t *gpa(struct fixture *f, uint64_t addr, uint64_t len)
{
	const uint8_t *p = guest_mem_ptr(&f->mem, addr, len);

	assert_non_null(p);
	return p;
}

/* The table at `addr`, checked as a guest would: signature, a length inside the ACPI area,
 * a checksum that sums to zero, skiff's OEM fields. */
static const uint8_t *table_at(struct fixture *f, uint64_t addr, const char *signature)
{
	const uint8_t *t;
	uint32_t len;

	assert_true(addr >= X86_ACPI_START && addr + HDR_SIZE <= X86_ACPI_END);
	t = gpa(f, addr, HDR_SIZE);
	assert_memory_equal(t, signature, 4);
	len = le32(t + HDR_LEN);
	assert_true(len >= HDR_SIZE);
	assert_true(addr + len <= X86_ACPI_END);
	t = gpa(f, addr, len);
	assert_int_equal(sum_bytes(t, len), 0);
	assert_memory_equal(t + 10, "SKIFF ", 6);
	assert_memory_equal(t + 16, "SKIFFVM ", 8);
	assert_memory_equal(t + 28, "SKFF", 4);
	return t;
}

static void build(struct fixture *f, int nr_cpus, const struct acpi_virtio_mmio_dev *virtio,
		  int nr_virtio)
{
	const struct acpi_config cfg = {
	    .nr_cpus = nr_cpus, .virtio = virtio, .nr_virtio = nr_virtio};

	memset(guest_mem_ptr(&f->mem, 0, X86_ACPI_END), 0, X86_ACPI_END);
	assert_int_equal(acpi_build_tables(&f->mem, &cfg, &f->rsdp), 0);
}

static uint64_t xsdt_addr(struct fixture *f)
{
	return le64(gpa(f, f->rsdp, 36) + 24);
}

/* The XSDT entry with `signature`, which must appear exactly once. */
static const uint8_t *find_table(struct fixture *f, const char *signature, uint64_t *addr_out)
{
	const uint8_t *xsdt = table_at(f, xsdt_addr(f), "XSDT");
	uint32_t n = (le32(xsdt + HDR_LEN) - HDR_SIZE) / 8;
	const uint8_t *found = NULL;

	for (uint32_t i = 0; i < n; i++) {
		uint64_t addr = le64(xsdt + HDR_SIZE + 8 * i);

		if (memcmp(gpa(f, addr, 4), signature, 4) == 0) {
			assert_null(found);
			found = table_at(f, addr, signature);
			if (addr_out)
				*addr_out = addr;
		}
	}
	assert_non_null(found);
	return found;
}

static const uint8_t *find_dsdt(struct fixture *f, uint32_t *len)
{
	const uint8_t *fadt = find_table(f, "FACP", NULL);
	const uint8_t *dsdt = table_at(f, le64(fadt + FADT_X_DSDT), "DSDT");

	*len = le32(dsdt + HDR_LEN);
	return dsdt;
}

static size_t count_occurrences(const uint8_t *hay, size_t hay_len, const void *needle,
				size_t needle_len)
{
	size_t n = 0;

	for (size_t i = 0; i + needle_len <= hay_len; i++)
		n += memcmp(hay + i, needle, needle_len) == 0;
	return n;
}

static void test_rsdp(void **state)
{
	struct fixture *f = *state;
	const uint8_t *rsdp;
	uint64_t found = 0;

	build(f, 1, NULL, 0);
	assert_int_equal(f->rsdp, X86_ACPI_START);
	rsdp = gpa(f, f->rsdp, 36);
	assert_memory_equal(rsdp, "RSD PTR ", 8);
	assert_int_equal(sum_bytes(rsdp, 20), 0);
	assert_int_equal(rsdp[15], 2);		    /* revision */
	assert_int_equal(le32(rsdp + 20), 36);	    /* length */
	assert_int_equal(sum_bytes(rsdp, 36), 0);   /* extended checksum */
	assert_memory_equal(rsdp + 9, "SKIFF ", 6); /* OEM ID */

	/* What a guest without a boot protocol pointer does: scan the BIOS area in 16-byte
	 * steps for the signature with a valid checksum. */
	for (uint64_t a = 0xe0000; a < 0x100000; a += 16) {
		const uint8_t *p = gpa(f, a, 20);

		if (memcmp(p, "RSD PTR ", 8) == 0 && sum_bytes(p, 20) == 0) {
			found = a;
			break;
		}
	}
	assert_int_equal(found, X86_ACPI_START);
}

static void test_xsdt_points_at_fadt_and_madt(void **state)
{
	struct fixture *f = *state;
	const uint8_t *xsdt;
	uint64_t fadt_addr, madt_addr;

	build(f, 2, NULL, 0);
	xsdt = table_at(f, xsdt_addr(f), "XSDT");
	assert_int_equal(le32(xsdt + HDR_LEN), HDR_SIZE + 2 * 8);
	find_table(f, "FACP", &fadt_addr);
	find_table(f, "APIC", &madt_addr);
	assert_int_equal(le64(xsdt + HDR_SIZE), fadt_addr);
	assert_int_equal(le64(xsdt + HDR_SIZE + 8), madt_addr);
	/* 8-byte alignment at least, for the guest's 64-bit reads. */
	assert_int_equal(xsdt_addr(f) % 8, 0);
	assert_int_equal(fadt_addr % 8, 0);
	assert_int_equal(madt_addr % 8, 0);
}

static void assert_gas_io8(const uint8_t *gas, uint16_t port)
{
	assert_int_equal(gas[0], 1); /* SystemIO */
	assert_int_equal(gas[1], 8); /* bit width */
	assert_int_equal(gas[2], 0); /* bit offset */
	assert_int_equal(gas[3], 1); /* byte access */
	assert_int_equal(le64(gas + 4), port);
}

static void test_fadt(void **state)
{
	struct fixture *f = *state;
	const uint8_t *fadt;
	uint32_t dsdt_len;
	const uint8_t *dsdt;
	uint64_t dsdt_gpa;

	build(f, 4, NULL, 0);
	fadt = find_table(f, "FACP", NULL);
	assert_int_equal(le32(fadt + HDR_LEN), 276);
	assert_int_equal(fadt[HDR_REVISION], 6);
	assert_int_equal(le32(fadt + FADT_FLAGS), (1u << 20) | (1u << 10) | (1u << 5) | (1u << 4));
	assert_int_equal(fadt[FADT_CENTURY], 0x32); /* the CMOS century register */
	assert_int_equal(fadt[FADT_IAPC_BOOT_ARCH] | fadt[FADT_IAPC_BOOT_ARCH + 1] << 8,
			 (1u << 1) | (1u << 2));
	assert_gas_io8(fadt + FADT_RESET_REG, X86_ACPI_RESET_PORT);
	assert_int_equal(fadt[FADT_RESET_VALUE], X86_ACPI_RESET_VALUE);
	assert_gas_io8(fadt + FADT_SLEEP_CONTROL, X86_ACPI_SLEEP_CTL);
	assert_gas_io8(fadt + FADT_SLEEP_STATUS, X86_ACPI_SLEEP_STS);
	/* Hardware-reduced: no FACS, no SCI, no PM blocks. */
	assert_int_equal(le32(fadt + 36), 0);	       /* FIRMWARE_CTRL */
	assert_int_equal(le64(fadt + 132), 0);	       /* X_FIRMWARE_CTRL */
	assert_int_equal(fadt[46] | fadt[47] << 8, 0); /* SCI_INT */
	assert_int_equal(le32(fadt + 76), 0);	       /* PM_TMR_BLK */

	dsdt_gpa = le64(fadt + FADT_X_DSDT);
	assert_int_equal(le32(fadt + FADT_DSDT), dsdt_gpa);
	dsdt = find_dsdt(f, &dsdt_len);
	assert_ptr_equal(dsdt, gpa(f, dsdt_gpa, 0));
	assert_int_equal(dsdt[HDR_REVISION], 2); /* 64-bit integers */
}

static void check_madt(struct fixture *f, int nr_cpus)
{
	const uint8_t *madt;
	uint32_t len, off;
	int nr_lapic = 0, nr_ioapic = 0, nr_nmi = 0;

	build(f, nr_cpus, NULL, 0);
	madt = find_table(f, "APIC", NULL);
	len = le32(madt + HDR_LEN);
	assert_int_equal(le32(madt + MADT_LAPIC_ADDR), X86_LAPIC_ADDR);
	assert_int_equal(le32(madt + MADT_FLAGS), 1); /* PCAT_COMPAT */

	for (off = MADT_ENTRIES; off < len;) {
		const uint8_t *e = madt + off;

		assert_true(off + 2 <= len && e[1] >= 2 && off + e[1] <= len);
		switch (e[0]) {
		case 0: /* Processor Local APIC, in vCPU order */
			assert_int_equal(e[1], 8);
			assert_int_equal(e[2], nr_lapic); /* ACPI processor UID */
			assert_int_equal(e[3], nr_lapic); /* APIC ID */
			assert_int_equal(le32(e + 4), 1); /* enabled */
			nr_lapic++;
			break;
		case 1: /* I/O APIC, its ID after every local APIC's */
			assert_int_equal(e[1], 12);
			assert_int_equal(e[2], nr_cpus);
			assert_int_equal(le32(e + 4), X86_IOAPIC_ADDR);
			assert_int_equal(le32(e + 8), 0); /* GSI base */
			nr_ioapic++;
			break;
		case 4: /* Local APIC NMI: LINT1 of every processor */
			assert_int_equal(e[1], 6);
			assert_int_equal(e[2], 0xff);
			assert_int_equal(e[5], 1);
			nr_nmi++;
			break;
		default:
			fail_msg("unexpected MADT entry type %d", e[0]);
		}
		off += e[1];
	}
	assert_int_equal(off, len);
	assert_int_equal(nr_lapic, nr_cpus);
	assert_int_equal(nr_ioapic, 1);
	assert_int_equal(nr_nmi, 1);
}

static void test_madt(void **state)
{
	static const int cpus[] = {1, 2, 8, 64, ACPI_MAX_CPUS};

	for (size_t i = 0; i < ARRAY_SIZE(cpus); i++)
		check_madt(*state, cpus[i]);
}

static void test_dsdt_s5_and_legacy_devices(void **state)
{
	/* Name(_S5_, Package(4) { 5, 0, 0, 0 }) */
	static const uint8_t s5[] = {0x08, '_',	 'S',  '5',  '_',
				     0x12, 0x07, 0x04, 0x0a, X86_ACPI_S5_SLP_TYP,
				     0x00, 0x00, 0x00};
	/* IO(Decode16, 0x3f8, 0x3f8, 1, 8), Interrupt(ResourceConsumer, Edge, ActiveHigh,
	 * Exclusive) { 4 } */
	static const uint8_t com1_crs[] = {0x47, 0x01, 0xf8, 0x03, 0xf8, 0x03, 0x01, 0x08, 0x89,
					   0x06, 0x00, 0x03, 0x01, 0x04, 0x00, 0x00, 0x00};
	/* IO 0x60 and IO 0x64, one port each, then IRQ 1 */
	static const uint8_t kbd_crs[] = {0x47, 0x01, 0x60, 0x00, 0x60, 0x00, 0x01, 0x01, 0x47,
					  0x01, 0x64, 0x00, 0x64, 0x00, 0x01, 0x01, 0x89, 0x06,
					  0x00, 0x03, 0x01, 0x01, 0x00, 0x00, 0x00};
	/* IO 0x70-0x71, then IRQ 8 */
	static const uint8_t rtc_crs[] = {0x47, 0x01, 0x70, 0x00, 0x70, 0x00, 0x01,
					  0x02, 0x89, 0x06, 0x00, 0x03, 0x01, 0x08};
	/* The power device's four ports, with no interrupt: straight to the End Tag. */
	static const uint8_t pwr_crs[] = {0x47, 0x01, 0x00, 0x06, 0x00, 0x06, 0x01, 0x04, 0x79};
	static const uint8_t eisaid_com[] = {0x0c, 0x41, 0xd0, 0x05, 0x01};
	static const uint8_t eisaid_kbd[] = {0x0c, 0x41, 0xd0, 0x03, 0x03};
	static const uint8_t eisaid_rtc[] = {0x0c, 0x41, 0xd0, 0x0b, 0x00};
	static const uint8_t eisaid_mb[] = {0x0c, 0x41, 0xd0, 0x0c, 0x02};
	struct fixture *f = *state;
	const uint8_t *dsdt;
	uint32_t len;

	build(f, 1, NULL, 0);
	dsdt = find_dsdt(f, &len);
	assert_int_equal(count_occurrences(dsdt, len, s5, sizeof(s5)), 1);
	assert_int_equal(count_occurrences(dsdt, len, "\\_SB_", 5), 1);
	assert_int_equal(count_occurrences(dsdt, len, com1_crs, sizeof(com1_crs)), 1);
	assert_int_equal(count_occurrences(dsdt, len, kbd_crs, sizeof(kbd_crs)), 1);
	assert_int_equal(count_occurrences(dsdt, len, rtc_crs, sizeof(rtc_crs)), 1);
	assert_int_equal(count_occurrences(dsdt, len, pwr_crs, sizeof(pwr_crs)), 1);
	assert_int_equal(count_occurrences(dsdt, len, eisaid_com, sizeof(eisaid_com)), 1);
	assert_int_equal(count_occurrences(dsdt, len, eisaid_kbd, sizeof(eisaid_kbd)), 1);
	assert_int_equal(count_occurrences(dsdt, len, eisaid_rtc, sizeof(eisaid_rtc)), 1);
	assert_int_equal(count_occurrences(dsdt, len, eisaid_mb, sizeof(eisaid_mb)), 1);
	assert_int_equal(count_occurrences(dsdt, len, "LNRO0005", 8), 0);
}

/* Device(VRnn) { Name(_HID, "LNRO0005") Name(_UID, n) Name(_CRS, ResourceTemplate() {
 *   Memory32Fixed(ReadWrite, base, size)
 *   Interrupt(ResourceConsumer, Edge, ActiveHigh, Exclusive) { gsi } }) } */
static void assert_virtio_device(const uint8_t *dsdt, uint32_t len, int index,
				 const struct acpi_virtio_mmio_dev *v)
{
	static const uint8_t hid[] = {0x08, '_', 'H', 'I', 'D', 0x0d, 'L', 'N',
				      'R',  'O', '0', '0', '0', '5',  0x00};
	uint8_t head[] = {'V', 'R', '0', (uint8_t)('0' + index)};
	uint8_t uid[] = {0x08, '_', 'U', 'I', 'D', 0, 0};
	uint8_t crs[] = {
	    0x08, '_',	'C',  'R',  'S',  0x11, 0x1a, 0x0a, 0x17,	   /* Buffer of 23 bytes */
	    0x86, 0x09, 0x00, 0x01, 0,	  0,	0,    0,    0,	  0, 0, 0, /* Memory32Fixed */
	    0x89, 0x06, 0x00, 0x03, 0x01, 0,	0,    0,    0,		   /* Interrupt */
	    0x79,							   /* End Tag */
	};
	size_t uid_len = sizeof(uid);
	const uint8_t *dev;
	uint8_t sum = 0;

	if (index < 2) {
		uid[5] = (uint8_t)index; /* ZeroOp, OneOp */
		uid_len = 6;
	} else {
		uid[5] = 0x0a;
		uid[6] = (uint8_t)index;
	}
	for (int i = 0; i < 4; i++) {
		crs[13 + i] = (uint8_t)(v->base >> (8 * i));
		crs[17 + i] = (uint8_t)(v->size >> (8 * i));
		crs[26 + i] = (uint8_t)(v->gsi >> (8 * i));
	}

	assert_int_equal(count_occurrences(dsdt, len, head, sizeof(head)), 1);
	dev = memmem(dsdt, len, head, sizeof(head));
	dev += sizeof(head);
	assert_memory_equal(dev, hid, sizeof(hid));
	dev += sizeof(hid);
	assert_memory_equal(dev, uid, uid_len);
	dev += uid_len;
	assert_memory_equal(dev, crs, sizeof(crs));
	/* The End Tag's checksum: the template's bytes sum to zero. */
	for (size_t i = 9; i < sizeof(crs); i++)
		sum += dev[i];
	sum += dev[sizeof(crs)];
	assert_int_equal(sum, 0);
}

static const struct acpi_virtio_mmio_dev two_virtio[] = {
    {.base = X86_VIRTIO_MMIO_START, .size = 0x1000, .gsi = 5},
    {.base = X86_VIRTIO_MMIO_START + 0x1000, .size = 0x200, .gsi = 23},
};

static void test_dsdt_virtio_mmio(void **state)
{
	struct fixture *f = *state;
	const uint8_t *dsdt;
	uint32_t len;

	build(f, 2, two_virtio, 2);
	dsdt = find_dsdt(f, &len);
	assert_int_equal(count_occurrences(dsdt, len, "LNRO0005", 8), 2);
	assert_virtio_device(dsdt, len, 0, &two_virtio[0]);
	assert_virtio_device(dsdt, len, 1, &two_virtio[1]);
}

static void test_rejects_what_it_cannot_describe(void **state)
{
	struct fixture *f = *state;
	const struct acpi_virtio_mmio_dev bad_virtio[] = {
	    {.base = 0xfffff000, .size = 0x2000, .gsi = 5},	  /* crosses 4 GiB */
	    {.base = 0x100000000ULL, .size = 0x1000, .gsi = 5},	  /* above 4 GiB */
	    {.base = X86_VIRTIO_MMIO_START, .size = 0, .gsi = 5}, /* empty */
	    {.base = X86_VIRTIO_MMIO_START, .size = 0x1000, .gsi = ACPI_IOAPIC_PINS},
	};
	const struct acpi_config bad[] = {
	    {.nr_cpus = 0},
	    {.nr_cpus = -1},
	    {.nr_cpus = ACPI_MAX_CPUS + 1},
	    {.nr_cpus = 1000},
	    {.nr_cpus = 1, .virtio = two_virtio, .nr_virtio = -1},
	    {.nr_cpus = 1, .virtio = NULL, .nr_virtio = 1},
	    {.nr_cpus = 1, .virtio = two_virtio, .nr_virtio = ACPI_MAX_VIRTIO_MMIO + 1},
	    {.nr_cpus = 1, .virtio = &bad_virtio[0], .nr_virtio = 1},
	    {.nr_cpus = 1, .virtio = &bad_virtio[1], .nr_virtio = 1},
	    {.nr_cpus = 1, .virtio = &bad_virtio[2], .nr_virtio = 1},
	    {.nr_cpus = 1, .virtio = &bad_virtio[3], .nr_virtio = 1},
	};
	const uint8_t *area = gpa(f, X86_ACPI_START, X86_ACPI_END - X86_ACPI_START);
	uint64_t rsdp = 0x1234;

	memset(guest_mem_ptr(&f->mem, 0, X86_ACPI_END), 0, X86_ACPI_END);
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		assert_int_equal(acpi_build_tables(&f->mem, &bad[i], &rsdp), -EINVAL);
		assert_int_equal(rsdp, 0x1234);
	}
	/* Nothing was written. */
	for (uint64_t i = 0; i < X86_ACPI_END - X86_ACPI_START; i++)
		assert_int_equal(area[i], 0);
}

/* The largest config fits the real area; an area too small for it is refused, not overrun. */
static void test_rejects_overflow(void **state)
{
	struct fixture *f = *state;
	struct acpi_virtio_mmio_dev *virtio = calloc(ACPI_MAX_VIRTIO_MMIO, sizeof(*virtio));
	struct acpi_config cfg = {
	    .nr_cpus = ACPI_MAX_CPUS, .virtio = virtio, .nr_virtio = ACPI_MAX_VIRTIO_MMIO};
	const uint64_t start = 0x10000, small_end = 0x11000;
	uint8_t *mem = guest_mem_ptr(&f->mem, 0, X86_ACPI_END);
	uint64_t rsdp = 0;

	assert_non_null(virtio);
	for (int i = 0; i < ACPI_MAX_VIRTIO_MMIO; i++) {
		virtio[i].base = X86_VIRTIO_MMIO_START + 0x1000ULL * i;
		virtio[i].size = 0x1000;
		virtio[i].gsi = 5 + i % 19;
	}
	assert_int_equal(acpi_build_tables(&f->mem, &cfg, &rsdp), 0);
	assert_int_equal(rsdp, X86_ACPI_START);

	memset(mem, 0, X86_ACPI_END);
	assert_int_equal(acpi_build_tables_at(&f->mem, &cfg, start, small_end, &rsdp), -ENOSPC);
	for (uint64_t i = 0; i < X86_ACPI_END; i++)
		assert_int_equal(mem[i], 0);

	/* A small config fits the same small area, and stays inside it. */
	cfg.nr_cpus = 2;
	cfg.nr_virtio = 0;
	memset(mem, 0xee, X86_ACPI_END);
	assert_int_equal(acpi_build_tables_at(&f->mem, &cfg, start, small_end, &rsdp), 0);
	assert_int_equal(rsdp, start);
	for (uint64_t i = 0; i < X86_ACPI_END; i++) {
		if (i < start || i >= small_end)
			assert_int_equal(mem[i], 0xee);
	}
	free(virtio);
}

static void test_area_outside_guest_ram(void **state)
{
	const struct guest_region layout[] = {{.gpa = 0, .size = X86_ACPI_START + 0x100}};
	const struct acpi_config cfg = {.nr_cpus = 1};
	struct guest_mem mem;
	uint64_t rsdp = 0;

	assert_int_equal(guest_mem_map(&mem, layout, 1), 0);
	assert_int_equal(acpi_build_tables(&mem, &cfg, &rsdp), -EFAULT);
	guest_mem_unmap(&mem);
}

/* iasl ------------------------------------------------------------------------------------- */

static bool iasl_available(void)
{
	return system("iasl -v >/dev/null 2>&1") == 0;
}

static void dump_table(const char *dir, const char *name, const uint8_t *t)
{
	char path[256];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s.dat", dir, name);
	fp = fopen(path, "wb");
	assert_non_null(fp);
	assert_int_equal(fwrite(t, 1, le32(t + HDR_LEN), fp), le32(t + HDR_LEN));
	assert_int_equal(fclose(fp), 0);
}

static char *read_text(const char *path)
{
	FILE *fp = fopen(path, "r");
	char *text;
	long len;

	if (!fp)
		return NULL;
	fseek(fp, 0, SEEK_END);
	len = ftell(fp);
	rewind(fp);
	text = calloc(1, len + 1);
	if (text && fread(text, 1, len, fp) != (size_t)len) {
		free(text);
		text = NULL;
	}
	fclose(fp);
	return text;
}

/* `iasl -d` on one table: it must succeed, and say nothing about errors, warnings or checksums.
 * Returns the disassembly. */
static char *iasl_disassemble(const char *dir, const char *name)
{
	char cmd[512], path[256];
	char *log, *dsl;
	int rc;

	snprintf(cmd, sizeof(cmd), "cd %s && iasl -d %s.dat >%s.log 2>&1", dir, name, name);
	rc = system(cmd);
	snprintf(path, sizeof(path), "%s/%s.log", dir, name);
	log = read_text(path);
	assert_non_null(log);
	if (rc != 0 || strcasestr(log, "error") || strcasestr(log, "warning") ||
	    strcasestr(log, "checksum") || strcasestr(log, "invalid"))
		fail_msg("iasl -d %s.dat (exit %d):\n%s", name, rc, log);
	free(log);
	snprintf(path, sizeof(path), "%s/%s.dsl", dir, name);
	dsl = read_text(path);
	assert_non_null(dsl);
	return dsl;
}

/* The disassembly recompiles: what iasl -d understood is valid ASL. */
static void iasl_recompile(const char *dir, const char *name)
{
	char cmd[512], path[256];
	char *log;
	int rc;

	snprintf(cmd, sizeof(cmd), "cd %s && iasl %s.dsl >%s.compile.log 2>&1", dir, name, name);
	rc = system(cmd);
	snprintf(path, sizeof(path), "%s/%s.compile.log", dir, name);
	log = read_text(path);
	assert_non_null(log);
	if (rc != 0 || !strstr(log, "0 Errors, 0 Warnings, 0 Remarks"))
		fail_msg("iasl %s.dsl (exit %d):\n%s", name, rc, log);
	free(log);
}

/* --enable-pci: the MCFG names the ECAM window of segment 0, bus 0; the DSDT has the host bridge
 * PCI0 (PNP0A08, compatible PNP0A03) with its windows, and reserves the ECAM window as
 * motherboard resources. Without PCI there is neither. */
static const struct acpi_pci test_pci = {
    .ecam_base = X86_PCI_ECAM_ADDR,
    .ecam_size = X86_PCI_ECAM_SIZE,
    .mmio_base = X86_PCI_MMIO_START,
    .mmio_size = X86_PCI_MMIO_SIZE,
    .cf8 = true,
};

static void build_pci(struct fixture *f, const struct acpi_pci *pci)
{
	const struct acpi_config cfg = {.nr_cpus = 2, .pci = pci};

	memset(guest_mem_ptr(&f->mem, 0, X86_ACPI_END), 0, X86_ACPI_END);
	assert_int_equal(acpi_build_tables(&f->mem, &cfg, &f->rsdp), 0);
}

static void test_pci_mcfg_and_host_bridge(void **state)
{
	struct fixture *f = *state;
	const uint8_t *xsdt, *mcfg, *dsdt;
	const uint8_t pnp0a08[] = {0x41, 0xd0, 0x0a, 0x08}; /* EISAID("PNP0A08") */
	const uint8_t pnp0a03[] = {0x41, 0xd0, 0x0a, 0x03};
	const uint8_t pnp0c02[] = {0x41, 0xd0, 0x0c, 0x02};
	uint32_t len;

	build(f, 2, NULL, 0);
	xsdt = table_at(f, xsdt_addr(f), "XSDT");
	assert_int_equal(le32(xsdt + HDR_LEN), HDR_SIZE + 2 * 8);
	dsdt = find_dsdt(f, &len);
	assert_int_equal(count_occurrences(dsdt, len, "PCI0", 4), 0);
	assert_int_equal(count_occurrences(dsdt, len, pnp0a08, 4), 0);

	build_pci(f, &test_pci);
	xsdt = table_at(f, xsdt_addr(f), "XSDT");
	assert_int_equal(le32(xsdt + HDR_LEN), HDR_SIZE + 3 * 8);
	mcfg = find_table(f, "MCFG", NULL);
	assert_int_equal(le32(mcfg + HDR_LEN), HDR_SIZE + 8 + 16);
	assert_int_equal(le64(mcfg + 44), X86_PCI_ECAM_ADDR); /* base address */
	assert_int_equal(mcfg[52] | mcfg[53] << 8, 0);	      /* segment */
	assert_int_equal(mcfg[54], 0);			      /* start bus */
	assert_int_equal(mcfg[55], 0);			      /* end bus: 1 MiB is bus 0 */
	/* FADT and MADT are where they were. */
	find_table(f, "FACP", NULL);
	find_table(f, "APIC", NULL);

	dsdt = find_dsdt(f, &len);
	assert_int_equal(count_occurrences(dsdt, len, "PCI0", 4), 1);
	assert_int_equal(count_occurrences(dsdt, len, pnp0a08, 4), 1);
	assert_int_equal(count_occurrences(dsdt, len, pnp0a03, 4), 1);
	/* PWRD and the ECAM reservation. */
	assert_int_equal(count_occurrences(dsdt, len, pnp0c02, 4), 2);

	/* Windows that are not whole buses below 4 GiB are refused. */
	struct acpi_pci bad = test_pci;
	const struct acpi_config cfg = {.nr_cpus = 1, .pci = &bad};
	uint64_t rsdp;

	bad.ecam_size = 0x1000;
	assert_int_equal(acpi_build_tables(&f->mem, &cfg, &rsdp), -EINVAL);
	bad = test_pci;
	bad.mmio_base = 0xfff00000ULL;
	bad.mmio_size = 0x200000;
	assert_int_equal(acpi_build_tables(&f->mem, &cfg, &rsdp), -EINVAL);
}

static void test_iasl_pci(void **state)
{
	struct fixture *f = *state;
	char *dsl, expect[128];
	uint32_t len;

	if (!iasl_available())
		skip();
	build_pci(f, &test_pci);
	strcpy(f->tmpdir, "/tmp/skiff-acpi-XXXXXX");
	assert_non_null(mkdtemp(f->tmpdir));
	dump_table(f->tmpdir, "dsdt", find_dsdt(f, &len));
	dump_table(f->tmpdir, "mcfg", find_table(f, "MCFG", NULL));
	dump_table(f->tmpdir, "xsdt", table_at(f, xsdt_addr(f), "XSDT"));

	dsl = iasl_disassemble(f->tmpdir, "mcfg");
	assert_non_null(strstr(dsl, "Base Address : 00000000E0000000"));
	assert_non_null(strstr(dsl, "Segment Group Number : 0000"));
	assert_non_null(strstr(dsl, "Start Bus Number : 00"));
	assert_non_null(strstr(dsl, "End Bus Number : 00"));
	free(dsl);

	dsl = iasl_disassemble(f->tmpdir, "dsdt");
	assert_non_null(strstr(dsl, "Device (PCI0)"));
	assert_non_null(strstr(dsl, "Name (_HID, EisaId (\"PNP0A08\")"));
	assert_non_null(strstr(dsl, "Name (_CID, EisaId (\"PNP0A03\")"));
	assert_non_null(strstr(dsl, "Name (_SEG, Zero)"));
	assert_non_null(strstr(dsl, "Name (_BBN, Zero)"));
	assert_non_null(strstr(dsl, "WordBusNumber (ResourceProducer, MinFixed, MaxFixed,"));
	assert_non_null(strstr(dsl, "IO (Decode16,\n                    0x0CF8,"));
	assert_non_null(strstr(dsl, "DWordMemory (ResourceProducer, PosDecode, MinFixed, MaxFixed, "
				    "NonCacheable, ReadWrite,"));
	snprintf(expect, sizeof(expect), "0x%08llX,         // Range Minimum",
		 (unsigned long long)X86_PCI_MMIO_START);
	assert_non_null(strstr(dsl, expect));
	snprintf(expect, sizeof(expect), "0x%08llX,         // Range Maximum",
		 (unsigned long long)(X86_PCI_MMIO_START + X86_PCI_MMIO_SIZE - 1));
	assert_non_null(strstr(dsl, expect));
	assert_non_null(strstr(dsl, "Device (ECAM)"));
	assert_non_null(strstr(dsl, "Memory32Fixed (ReadOnly,\n                    0xE0000000,"));
	free(dsl);
	iasl_recompile(f->tmpdir, "dsdt");
	free(iasl_disassemble(f->tmpdir, "xsdt"));
}

static void test_iasl_disassembles(void **state)
{
	struct fixture *f = *state;
	char *dsl;
	uint32_t len;

	if (!iasl_available())
		skip();
	build(f, 8, two_virtio, 2);
	strcpy(f->tmpdir, "/tmp/skiff-acpi-XXXXXX");
	assert_non_null(mkdtemp(f->tmpdir));
	dump_table(f->tmpdir, "dsdt", find_dsdt(f, &len));
	dump_table(f->tmpdir, "facp", find_table(f, "FACP", NULL));
	dump_table(f->tmpdir, "apic", find_table(f, "APIC", NULL));
	dump_table(f->tmpdir, "xsdt", table_at(f, xsdt_addr(f), "XSDT"));

	dsl = iasl_disassemble(f->tmpdir, "dsdt");
	assert_non_null(strstr(dsl, "Name (_S5, Package (0x04)"));
	assert_int_equal(count_occurrences((const uint8_t *)dsl, strlen(dsl), "\"LNRO0005\"", 10),
			 2);
	assert_non_null(strstr(dsl, "EisaId (\"PNP0501\")"));
	assert_non_null(strstr(dsl, "EisaId (\"PNP0303\")"));
	assert_non_null(strstr(dsl, "EisaId (\"PNP0B00\")"));
	assert_non_null(strstr(dsl, "Memory32Fixed (ReadWrite,"));
	assert_non_null(
	    strstr(dsl, "Interrupt (ResourceConsumer, Edge, ActiveHigh, Exclusive, ,, )"));
	free(dsl);
	iasl_recompile(f->tmpdir, "dsdt");

	dsl = iasl_disassemble(f->tmpdir, "facp");
	assert_non_null(strstr(dsl, "Hardware Reduced (V5) : 1"));
	assert_non_null(strstr(dsl, "8042 Present on ports 60/64 (V2) : 1"));
	free(dsl);
	dsl = iasl_disassemble(f->tmpdir, "apic");
	assert_int_equal(
	    count_occurrences((const uint8_t *)dsl, strlen(dsl), "[Processor Local APIC]", 22), 8);
	assert_non_null(strstr(dsl, "I/O Apic ID : 08"));
	free(dsl);
	free(iasl_disassemble(f->tmpdir, "xsdt"));
}

/* VMGenID: VGEN with the _HID Linux's vmgenid driver matches and an ADDR method returning the
 * ID's address as (low, high) DWords, and a Generic Event Device on the GSI whose _EVT
 * notifies VGEN with 0x80. Without a VMGenID there is neither. */
static const struct acpi_vmgenid test_vmgenid = {.addr = X86_VMGENID_ADDR, .gsi = X86_VMGENID_GSI};

static void build_vmgenid(struct fixture *f, const struct acpi_vmgenid *g)
{
	const struct acpi_config cfg = {.nr_cpus = 1, .vmgenid = g};

	memset(guest_mem_ptr(&f->mem, 0, X86_ACPI_END), 0, X86_ACPI_END);
	assert_int_equal(acpi_build_tables(&f->mem, &cfg, &f->rsdp), 0);
}

static void test_dsdt_vmgenid(void **state)
{
	struct fixture *f = *state;
	/* Method(ADDR, 0) { Return(Package(2) { 0xfe000, Zero }) } */
	const uint8_t addr_method[] = {0x14, 0x10, 'A',	 'D',  'D',  'R',  0x00, 0xa4, 0x12,
				       0x08, 0x02, 0x0c, 0x00, 0xe0, 0x0f, 0x00, 0x00};
	/* Interrupt(ResourceConsumer, Edge, ActiveHigh, Exclusive) { 9 } */
	const uint8_t ged_irq[] = {0x89, 0x06, 0x00, 0x03, 0x01, X86_VMGENID_GSI, 0, 0, 0};
	/* Method(_EVT, 1) { Notify(\_SB_.VGEN, 0x80) } */
	const uint8_t evt[] = {0x14, 0x13, '_', 'E', 'V', 'T', 0x01, 0x86, 0x5c, 0x2e, '_',
			       'S',  'B',  '_', 'V', 'G', 'E', 'N',  0x0a, 0x80};
	const uint8_t *dsdt;
	uint32_t len;

	_Static_assert(X86_VMGENID_ADDR == 0xfe000, "addr_method's bytes hold 0xfe000");
	build(f, 1, NULL, 0);
	dsdt = find_dsdt(f, &len);
	assert_int_equal(count_occurrences(dsdt, len, "VMGENCTR", 8), 0);
	assert_int_equal(count_occurrences(dsdt, len, "ACPI0013", 8), 0);

	build_vmgenid(f, &test_vmgenid);
	dsdt = find_dsdt(f, &len);
	assert_int_equal(count_occurrences(dsdt, len, "_HID\x0dVMGENCTR\0", 14), 1);
	assert_int_equal(count_occurrences(dsdt, len, "_CID\x0dVM_Gen_Counter\0", 20), 1);
	assert_int_equal(count_occurrences(dsdt, len, "_DDN\x0dVM_Gen_Counter\0", 20), 1);
	assert_int_equal(count_occurrences(dsdt, len, addr_method, sizeof(addr_method)), 1);
	assert_int_equal(count_occurrences(dsdt, len, "_HID\x0d" "ACPI0013\0", 14), 1);
	assert_int_equal(count_occurrences(dsdt, len, ged_irq, sizeof(ged_irq)), 1);
	assert_int_equal(count_occurrences(dsdt, len, evt, sizeof(evt)), 1);

	/* An address above 4 GiB keeps its high half; a GSI past the I/O APIC is refused. */
	const struct acpi_vmgenid high = {.addr = 0x123456789000ULL, .gsi = 9};
	const uint8_t high_pkg[] = {0x12, 0x0a, 0x02, 0x0c, 0x00, 0x90,
				    0x78, 0x56, 0x0b, 0x34, 0x12};
	struct acpi_vmgenid bad = test_vmgenid;
	const struct acpi_config cfg = {.nr_cpus = 1, .vmgenid = &bad};
	uint64_t rsdp;

	build_vmgenid(f, &high);
	dsdt = find_dsdt(f, &len);
	assert_int_equal(count_occurrences(dsdt, len, high_pkg, sizeof(high_pkg)), 1);
	bad.gsi = ACPI_IOAPIC_PINS;
	assert_int_equal(acpi_build_tables(&f->mem, &cfg, &rsdp), -EINVAL);
}

static void test_iasl_vmgenid(void **state)
{
	struct fixture *f = *state;
	char *dsl;
	uint32_t len;

	if (!iasl_available())
		skip();
	build_vmgenid(f, &test_vmgenid);
	strcpy(f->tmpdir, "/tmp/skiff-acpi-XXXXXX");
	assert_non_null(mkdtemp(f->tmpdir));
	dump_table(f->tmpdir, "dsdt", find_dsdt(f, &len));
	dsl = iasl_disassemble(f->tmpdir, "dsdt");
	assert_non_null(strstr(dsl, "Device (VGEN)"));
	assert_non_null(strstr(dsl, "Name (_HID, \"VMGENCTR\")"));
	assert_non_null(strstr(dsl, "Name (_CID, \"VM_Gen_Counter\")"));
	assert_non_null(strstr(dsl, "Name (_DDN, \"VM_Gen_Counter\")"));
	assert_non_null(strstr(dsl, "Method (ADDR, 0, NotSerialized)"));
	assert_non_null(strstr(dsl, "0x000FE000"));
	assert_non_null(strstr(dsl, "Device (GED0)"));
	assert_non_null(strstr(dsl, "Name (_HID, \"ACPI0013\" /* Generic Event Device */)"));
	assert_non_null(strstr(dsl, "Method (_EVT, 1, NotSerialized)"));
	assert_non_null(strstr(dsl, "Notify (\\_SB.VGEN, 0x80)"));
	assert_non_null(
	    strstr(dsl, "Interrupt (ResourceConsumer, Edge, ActiveHigh, Exclusive, ,, )"));
	free(dsl);
	/* No iasl_recompile: the compiler refuses _HID "VMGENCTR" (error 6035, an ACPI id's last
	 * four characters are hex digits), yet that is the id Linux's vmgenid driver matches, as
	 * Hyper-V's tables give it. */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_rsdp, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_xsdt_points_at_fadt_and_madt, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fadt, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_madt, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_dsdt_s5_and_legacy_devices, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_dsdt_virtio_mmio, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_dsdt_vmgenid, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_iasl_vmgenid, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rejects_what_it_cannot_describe, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rejects_overflow, setup, teardown),
	    cmocka_unit_test(test_area_outside_guest_ram),
	    cmocka_unit_test_setup_teardown(test_iasl_disassembles, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pci_mcfg_and_host_bridge, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_iasl_pci, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
