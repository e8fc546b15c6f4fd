#include "base/state.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void state_writer_init(struct state_writer *w)
{
	memset(w, 0, sizeof(*w));
}

void state_writer_free(struct state_writer *w)
{
	free(w->buf);
	memset(w, 0, sizeof(*w));
}

static uint8_t *reserve(struct state_writer *w, size_t n)
{
	uint8_t *p;

	if (w->error)
		return NULL;
	if (n > w->cap - w->len) {
		size_t cap = w->cap ? w->cap : 256;

		while (cap - w->len < n) {
			if (cap > SIZE_MAX / 2) {
				w->error = -ENOMEM;
				return NULL;
			}
			cap *= 2;
		}
		p = realloc(w->buf, cap);
		if (!p) {
			w->error = -ENOMEM;
			return NULL;
		}
		w->buf = p;
		w->cap = cap;
	}
	p = w->buf + w->len;
	w->len += n;
	return p;
}

static void put_le(struct state_writer *w, uint64_t v, unsigned bytes)
{
	uint8_t *p = reserve(w, bytes);

	for (unsigned i = 0; p && i < bytes; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void poke_le(uint8_t *p, uint64_t v, unsigned bytes)
{
	for (unsigned i = 0; i < bytes; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

void state_begin(struct state_writer *w, uint16_t tag, uint16_t version)
{
	if (w->open && !w->error)
		w->error = -EINVAL;
	w->section = w->len;
	w->open = true;
	put_le(w, tag, 2);
	put_le(w, version, 2);
	put_le(w, 0, 4); /* the length, once known */
}

void state_put_u8(struct state_writer *w, uint8_t v)
{
	put_le(w, v, 1);
}

void state_put_u16(struct state_writer *w, uint16_t v)
{
	put_le(w, v, 2);
}

void state_put_u32(struct state_writer *w, uint32_t v)
{
	put_le(w, v, 4);
}

void state_put_u64(struct state_writer *w, uint64_t v)
{
	put_le(w, v, 8);
}

void state_put_bool(struct state_writer *w, bool v)
{
	put_le(w, v ? 1 : 0, 1);
}

void state_put_bytes(struct state_writer *w, const void *data, size_t len)
{
	uint8_t *p = reserve(w, len);

	if (p && len)
		memcpy(p, data, len);
}

void state_end(struct state_writer *w)
{
	size_t payload;

	if (!w->open) {
		if (!w->error)
			w->error = -EINVAL;
		return;
	}
	w->open = false;
	if (w->error)
		return;
	payload = w->len - w->section - STATE_SECTION_HEADER_SIZE;
	if (payload > UINT32_MAX) {
		w->error = -E2BIG;
		return;
	}
	poke_le(w->buf + w->section + 4, payload, 4);
}

int state_writer_status(const struct state_writer *w)
{
	if (w->error)
		return w->error;
	return w->open ? -EINVAL : 0;
}

void state_reader_init(struct state_reader *r, const void *buf, size_t len)
{
	memset(r, 0, sizeof(*r));
	r->buf = buf;
	r->len = len;
	r->limit = len;
}

static int fail(struct state_reader *r, int err, const char *fmt, va_list ap)
{
	if (r->error)
		return r->error;
	r->error = err;
	vsnprintf(r->why, sizeof(r->why), fmt, ap);
	return err;
}

static int failf(struct state_reader *r, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int failf(struct state_reader *r, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	err = fail(r, err, fmt, ap);
	va_end(ap);
	return err;
}

int state_refuse(struct state_reader *r, const char *fmt, ...)
{
	va_list ap;
	int err;

	va_start(ap, fmt);
	err = fail(r, -EBADMSG, fmt, ap);
	va_end(ap);
	return err;
}

/* Takes n bytes of the open section (or of the stream between sections, for headers). */
static const uint8_t *take(struct state_reader *r, size_t n, const char *what)
{
	const uint8_t *p;

	if (r->error)
		return NULL;
	if (n > r->limit - r->pos) {
		failf(r, -EBADMSG, "truncated state: %s needs %zu bytes at offset %zu, %zu left",
		      what, n, r->pos, r->limit - r->pos);
		return NULL;
	}
	p = r->buf + r->pos;
	r->pos += n;
	return p;
}

static uint64_t peek_le(const uint8_t *p, unsigned bytes)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < bytes; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static int get_le(struct state_reader *r, uint64_t *v, unsigned bytes, const char *what)
{
	const uint8_t *p;

	*v = 0;
	if (!r->open)
		return failf(r, -EINVAL, "state read of %s outside a section", what);
	p = take(r, bytes, what);
	if (!p)
		return r->error;
	*v = peek_le(p, bytes);
	return 0;
}

int state_peek_tag(struct state_reader *r, uint16_t *tag)
{
	*tag = 0;
	if (r->error)
		return r->error;
	if (r->open)
		return failf(r, -EINVAL, "state: a section is still open");
	if (r->len - r->pos < 2)
		return failf(r, -EBADMSG, "truncated state: no section at offset %zu", r->pos);
	*tag = (uint16_t)peek_le(r->buf + r->pos, 2);
	return 0;
}

int state_open(struct state_reader *r, uint16_t tag, uint16_t max_version, uint16_t *version)
{
	size_t at = r->pos;
	const uint8_t *h;
	uint16_t got_tag;
	uint32_t len;

	*version = 0;
	if (r->open)
		return failf(r, -EINVAL, "state: section opened inside another");
	h = take(r, STATE_SECTION_HEADER_SIZE, "a section header");
	if (!h)
		return r->error;
	got_tag = (uint16_t)peek_le(h, 2);
	*version = (uint16_t)peek_le(h + 2, 2);
	len = (uint32_t)peek_le(h + 4, 4);
	if (got_tag != tag)
		return failf(r, -EBADMSG, "state at offset %zu: section tag %u where %u belongs",
			     at, got_tag, tag);
	if (*version == 0 || *version > max_version)
		return failf(r, -EPROTONOSUPPORT,
			     "state at offset %zu: section %u has version %u; this build reads "
			     "versions 1 to %u",
			     at, tag, *version, max_version);
	if (len > r->len - r->pos)
		return failf(
		    r, -EBADMSG,
		    "truncated state: section %u at offset %zu says %u bytes, %zu are left", tag,
		    at, len, r->len - r->pos);
	r->open = true;
	r->limit = r->pos + len;
	return 0;
}

int state_get_u8(struct state_reader *r, uint8_t *v)
{
	uint64_t x;
	int ret = get_le(r, &x, 1, "a u8");

	*v = (uint8_t)x;
	return ret;
}

int state_get_u16(struct state_reader *r, uint16_t *v)
{
	uint64_t x;
	int ret = get_le(r, &x, 2, "a u16");

	*v = (uint16_t)x;
	return ret;
}

int state_get_u32(struct state_reader *r, uint32_t *v)
{
	uint64_t x;
	int ret = get_le(r, &x, 4, "a u32");

	*v = (uint32_t)x;
	return ret;
}

int state_get_u64(struct state_reader *r, uint64_t *v)
{
	return get_le(r, v, 8, "a u64");
}

int state_get_bool(struct state_reader *r, bool *v)
{
	uint64_t x;
	int ret = get_le(r, &x, 1, "a bool");

	*v = x == 1;
	if (!ret && x > 1)
		ret = failf(r, -EBADMSG, "garbled state at offset %zu: %llu is not a boolean",
			    r->pos - 1, (unsigned long long)x);
	return ret;
}

int state_get_bytes(struct state_reader *r, void *data, size_t len)
{
	const uint8_t *p;

	if (!r->open) {
		memset(data, 0, len);
		return failf(r, -EINVAL, "state read of %zu bytes outside a section", len);
	}
	p = take(r, len, "a byte string");
	if (!p) {
		memset(data, 0, len);
		return r->error;
	}
	if (len)
		memcpy(data, p, len);
	return 0;
}

int state_close(struct state_reader *r)
{
	if (!r->open)
		return r->error ? r->error : failf(r, -EINVAL, "state: no section to close");
	r->open = false;
	if (!r->error && r->pos != r->limit)
		failf(r, -EBADMSG,
		      "garbled state: %zu bytes left unread in the section ending at %zu",
		      r->limit - r->pos, r->limit);
	r->pos = r->limit;
	r->limit = r->len;
	return r->error;
}

int state_reader_status(const struct state_reader *r)
{
	return r->error;
}

const char *state_reader_error(const struct state_reader *r)
{
	return r->why;
}

bool state_reader_at_end(const struct state_reader *r)
{
	return !r->error && !r->open && r->pos == r->len;
}
