/* The byte layout of saved device state (what snapshots will be made of): a stream of sections,
 * each a header and a payload,
 *
 *   u16 tag       what the section holds (a device kind, base/device.h)
 *   u16 version   of that kind's payload layout, from 1; a kind that changes its layout adds a
 *                 version and keeps reading the old ones
 *   u32 length    payload bytes that follow
 *
 * and every integer little-endian. A writer grows a buffer; a reader reads a borrowed buffer with
 * every read bounds-checked against the open section. A reader's first failure sticks: later
 * reads fail too (and give zeros), and state_reader_error() tells what went wrong, so a restore
 * function can read everything and check once. Failures: -EBADMSG (truncated, a section of
 * another tag, a length past the end, bytes left over in a section, a value the device refuses),
 * -EPROTONOSUPPORT (a version this build does not know). Nothing here allocates on the reader
 * side; nothing is thread-safe (one writer or reader per thread). */
#ifndef SKIFF_BASE_STATE_H
#define SKIFF_BASE_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STATE_SECTION_HEADER_SIZE 8

struct state_writer {
	uint8_t *buf;
	size_t len, cap;
	size_t section; /* offset of the open section's header */
	bool open;
	int error; /* -ENOMEM, or -EINVAL for a section begun twice or ended unopened */
};

void state_writer_init(struct state_writer *w);
void state_writer_free(struct state_writer *w);

void state_begin(struct state_writer *w, uint16_t tag, uint16_t version);
void state_put_u8(struct state_writer *w, uint8_t v);
void state_put_u16(struct state_writer *w, uint16_t v);
void state_put_u32(struct state_writer *w, uint32_t v);
void state_put_u64(struct state_writer *w, uint64_t v);
void state_put_bool(struct state_writer *w, bool v);
void state_put_bytes(struct state_writer *w, const void *data, size_t len);
/* Closes the open section (fills in its length). */
void state_end(struct state_writer *w);

/* 0, or the writer's first failure. */
int state_writer_status(const struct state_writer *w);

struct state_reader {
	const uint8_t *buf;
	size_t len, pos;
	size_t limit; /* the open section's end, else len */
	bool open;
	int error;
	char why[160];
};

void state_reader_init(struct state_reader *r, const void *buf, size_t len);

/* Opens the next section, which must be tagged `tag` and have a version from 1 to max_version;
 * its version goes to *version. Returns 0 or the failure. */
int state_open(struct state_reader *r, uint16_t tag, uint16_t max_version, uint16_t *version);
/* The tag of the next section, without reading it. Returns 0, or -EBADMSG when none follows. */
int state_peek_tag(struct state_reader *r, uint16_t *tag);
int state_get_u8(struct state_reader *r, uint8_t *v);
int state_get_u16(struct state_reader *r, uint16_t *v);
int state_get_u32(struct state_reader *r, uint32_t *v);
int state_get_u64(struct state_reader *r, uint64_t *v);
/* Only 0 and 1 are booleans; anything else is garbled. */
int state_get_bool(struct state_reader *r, bool *v);
int state_get_bytes(struct state_reader *r, void *data, size_t len);
/* Closes the open section: all of its payload must have been read. Returns 0 or the failure. */
int state_close(struct state_reader *r);

/* For the reader's user, when a value read is not one it accepts: records -EBADMSG and the
 * reason (printf-style) unless an earlier failure stuck. Returns the reader's failure. */
int state_refuse(struct state_reader *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* 0, or the first failure; and its reason ("" while there is none). */
int state_reader_status(const struct state_reader *r);
const char *state_reader_error(const struct state_reader *r);
/* True when every byte has been read and no section is open. */
bool state_reader_at_end(const struct state_reader *r);

#endif
