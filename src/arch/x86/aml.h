/* A small builder for ACPI Machine Language (ACPI 6.5, chapter 20): just what skiff's DSDT needs.
 * Bytes go into a growable buffer. Errors (out of memory, a bad name, ends out of order) are
 * sticky: the first one is kept, later calls do nothing, and aml_finish() reports it once.
 *
 * Constructs with a PkgLength (Scope, Device, Package, ResourceTemplate) are written as a
 * *_begin() / aml_end() pair; aml_end() inserts the PkgLength once the contents are known.
 *
 *	struct aml_pkg dev = aml_device_begin(a, "COM1");
 *	aml_name_eisaid(a, "_HID", "PNP0501");
 *	aml_name(a, "_CRS");
 *	struct aml_pkg crs = aml_resource_template_begin(a);
 *	aml_io(a, 0x3f8, 8);
 *	aml_end(a, crs);
 *	aml_end(a, dev);
 *
 * Names are 4-character NameSegs ("_SB_", "COM1", short names padded with '_'), optionally
 * preceded by the root prefix '\' ("\\_SB_" in C) and joined by dots into a path
 * ("\\_SB_.VGEN"). */
#ifndef SKIFF_X86_AML_H
#define SKIFF_X86_AML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct aml {
	uint8_t *buf;
	size_t len;
	size_t cap;
	int depth; /* open *_begin() without their aml_end() */
	int err;   /* first error, negative errno; 0 if none */
};

/* An open construct, closed by aml_end(). */
struct aml_pkg {
	size_t start; /* where the PkgLength goes */
	int depth;
	bool resource_template;
};

void aml_init(struct aml *a);
void aml_free(struct aml *a);
/* 0 when every call succeeded and every begin has its end, else the first error. */
int aml_finish(struct aml *a);

/* PkgLength encoding of `value` (the length including the PkgLength bytes themselves) into
 * `out`: returns the number of bytes (1-4), or -E2BIG for values of 2^28 and above. */
int aml_pkglength_encode(uint32_t value, uint8_t out[4]);

void aml_bytes(struct aml *a, const void *data, size_t len);

/* Data objects. aml_integer uses the shortest encoding: ZeroOp, OneOp, Byte/Word/DWord/QWord. */
void aml_integer(struct aml *a, uint64_t value);
void aml_string(struct aml *a, const char *s); /* ASCII 0x01-0x7f */
/* A compressed EISA id ("PNP0501": three letters, four hex digits) as a DWord. */
void aml_eisaid(struct aml *a, const char *id);

/* NameOp: aml_name() starts Name(name, ...) and the next data object is its value. */
void aml_name(struct aml *a, const char *name);
void aml_name_integer(struct aml *a, const char *name, uint64_t value);
void aml_name_string(struct aml *a, const char *name, const char *s);
void aml_name_eisaid(struct aml *a, const char *name, const char *id);

struct aml_pkg aml_scope_begin(struct aml *a, const char *name);
struct aml_pkg aml_device_begin(struct aml *a, const char *name);
/* Method(name, nr_args, NotSerialized) { ... }: the caller writes its statements. */
struct aml_pkg aml_method_begin(struct aml *a, const char *name, uint8_t nr_args);
/* Return(...): the next data object is what it returns. */
void aml_return(struct aml *a);
/* Notify(target, value) */
void aml_notify(struct aml *a, const char *target, uint64_t value);

/* The caller then writes exactly nr_elements data objects. */
struct aml_pkg aml_package_begin(struct aml *a, uint8_t nr_elements);
/* A Buffer holding resource descriptors; aml_end() appends the End Tag with its checksum. */
struct aml_pkg aml_resource_template_begin(struct aml *a);
void aml_end(struct aml *a, struct aml_pkg pkg);

/* Resource descriptors (ACPI 6.5, 6.4), only inside a resource template. */
void aml_memory32_fixed(struct aml *a, bool writable, uint32_t base, uint32_t size);
/* IO(Decode16, base, base, 1, len): a fixed range of ports. */
void aml_io(struct aml *a, uint16_t base, uint8_t len);

/* Address space descriptors of a bridge's windows (producer, fixed minimum and maximum):
 * WordBusNumber(min..max) and DWordMemory(ReadWrite, NonCacheable, min..max). */
void aml_word_bus_number(struct aml *a, uint16_t min, uint16_t max);
void aml_dword_memory(struct aml *a, uint32_t min, uint32_t max);

/* Extended Interrupt descriptor flags; each unset flag means the opposite (producer, level,
 * active high, exclusive). */
enum aml_irq_flags {
	AML_IRQ_CONSUMER = 1 << 0,
	AML_IRQ_EDGE = 1 << 1,
	AML_IRQ_ACTIVE_LOW = 1 << 2,
	AML_IRQ_SHARED = 1 << 3,
};

/* Interrupt(flags) { gsi } */
void aml_interrupt(struct aml *a, unsigned int flags, uint32_t gsi);

#endif
