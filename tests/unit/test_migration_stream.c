/* Live migration's wire format (vmm/migration_stream.h): URLs, frames that go through a socket
 * and come out the same, and hostile streams. Every frame whose header is not ours (magic,
 * protocol, architecture, header CRC, type, length), whose payload does not match its CRC, that
 * stops in the middle, or whose PAGES offsets point outside guest memory is refused with a
 * reason; a peer that says nothing times out; an ERROR frame comes out as the peer's reason. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/log.h"
#include "vmm/migration_stream.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

static void test_urls(void **state)
{
	struct migration_url u;

	(void)state;
	assert_int_equal(migration_url_parse("unix:/tmp/x.sock", &u), 0);
	assert_false(u.tcp);
	assert_string_equal(u.path, "/tmp/x.sock");
	assert_int_equal(migration_url_parse("tcp:127.0.0.1:4444", &u), 0);
	assert_true(u.tcp);
	assert_string_equal(u.host, "127.0.0.1");
	assert_int_equal(u.port, 4444);
	assert_int_equal(migration_url_parse("tcp:localhost:1", &u), 0);
	assert_string_equal(u.host, "127.0.0.1");
	assert_int_equal(migration_url_parse("tcp:[::1]:65535", &u), 0);
	assert_string_equal(u.host, "::1");

	assert_int_equal(migration_url_parse("unix:", &u), -EINVAL);
	assert_int_equal(migration_url_parse("/tmp/x.sock", &u), -EINVAL);
	assert_non_null(strstr(log_last_error(), "not a migration URL"));
	assert_int_equal(migration_url_parse("tcp:127.0.0.1", &u), -EINVAL);
	assert_int_equal(migration_url_parse("tcp:127.0.0.1:0", &u), -EINVAL);
	assert_int_equal(migration_url_parse("tcp:127.0.0.1:65536", &u), -EINVAL);
	assert_int_equal(migration_url_parse("tcp:127.0.0.1:12x", &u), -EINVAL);
	assert_int_equal(migration_url_parse("tcp:example.com:80", &u), -EINVAL);
	assert_non_null(strstr(log_last_error(), "must be an IP address"));
	assert_int_equal(migration_url_parse("tcp:[::1:80", &u), -EINVAL);
	{
		char longp[300] = "unix:";

		memset(longp + 5, 'a', 200);
		assert_int_equal(migration_url_parse(longp, &u), -EINVAL);
	}
}

static void header_of(uint8_t h[MIGRATION_FRAME_HEADER], uint32_t type, const char *payload)
{
	struct iovec part = {(void *)payload, payload ? strlen(payload) : 0};

	migration_make_header(h, type, &part, 1);
}

/* Rewrites the header's CRC after a change, so that the check after it is what refuses. */
static void reseal(uint8_t h[MIGRATION_FRAME_HEADER])
{
	migration_put_le(h + 20, crc32(crc32(0, NULL, 0), h, 20), 4);
}

static void test_headers(void **state)
{
	uint8_t h[MIGRATION_FRAME_HEADER];
	uint32_t type, len;

	(void)state;
	header_of(h, MIGRATION_HELLO, "abc");
	assert_int_equal(migration_check_header(h, &type, &len), 0);
	assert_int_equal(type, MIGRATION_HELLO);
	assert_int_equal(len, 3);

	header_of(h, MIGRATION_HELLO, "abc");
	h[0] = 'X';
	assert_int_equal(migration_check_header(h, &type, &len), -EPROTO);
	assert_non_null(strstr(log_last_error(), "not a skiff migration stream"));

	header_of(h, MIGRATION_HELLO, "abc");
	h[13] ^= 1; /* the length, without resealing */
	assert_int_equal(migration_check_header(h, &type, &len), -EBADMSG);
	assert_non_null(strstr(log_last_error(), "header is corrupted"));

	header_of(h, MIGRATION_HELLO, "abc");
	migration_put_le(h + 4, 1, 2); /* protocol 1 checksummed every page */
	reseal(h);
	assert_int_equal(migration_check_header(h, &type, &len), -EPROTONOSUPPORT);
	assert_non_null(strstr(log_last_error(), "protocol 1; this skiff speaks 2"));

	header_of(h, MIGRATION_HELLO, "abc");
	migration_put_le(h + 6, 2, 2);
	reseal(h);
#ifdef __x86_64__
	assert_int_equal(migration_check_header(h, &type, &len), -EPROTO);
	assert_non_null(strstr(log_last_error(), "from an arm64 VM; this skiff runs x86_64"));
#endif
	header_of(h, MIGRATION_HELLO, "abc");
	migration_put_le(h + 6, 77, 2);
	reseal(h);
	assert_int_equal(migration_check_header(h, &type, &len), -EPROTO);

	for (uint32_t bad = 0; bad < 3; bad++) {
		header_of(h, MIGRATION_HELLO, "abc");
		migration_put_le(h + 8, bad == 0 ? 0 : bad == 1 ? MIGRATION_FRAME_TYPES : 0xffffffff,
				 4);
		reseal(h);
		assert_int_equal(migration_check_header(h, &type, &len), -EBADMSG);
	}
	header_of(h, MIGRATION_STATE, "abc");
	migration_put_le(h + 12, MIGRATION_MAX_FRAME + 1, 4);
	reseal(h);
	assert_int_equal(migration_check_header(h, &type, &len), -EBADMSG);
	assert_non_null(strstr(log_last_error(), "at most"));

	/* Random headers: never taken (the CRC alone makes a collision 2^-32). */
	srand(11);
	for (int i = 0; i < 20000; i++) {
		for (int j = 0; j < MIGRATION_FRAME_HEADER; j++)
			h[j] = (uint8_t)rand();
		if (i & 1)
			memcpy(h, "SKMG", 4);
		assert_int_not_equal(migration_check_header(h, &type, &len), 0);
	}
}

/* A PAGES payload of n pages at the offsets given. */
static uint8_t *pages_payload(uint32_t n, const uint64_t *offsets, size_t *len)
{
	uint8_t *p;

	*len = 8 + (size_t)n * (8 + MIGRATION_PAGE_SIZE);
	p = calloc(1, *len);
	migration_put_le(p, n, 4);
	for (uint32_t i = 0; i < n; i++) {
		migration_put_le(p + 8 + 8 * i, offsets[i], 8);
		memset(p + 8 + 8 * n + (size_t)i * MIGRATION_PAGE_SIZE, (int)i + 1,
		       MIGRATION_PAGE_SIZE);
	}
	return p;
}

static void test_pages(void **state)
{
	const uint64_t mem = 1 << 20;
	uint64_t offs[3] = {0, 4096, mem - 4096};
	const uint8_t *o, *d;
	uint32_t count;
	size_t len;
	uint8_t *p = pages_payload(3, offs, &len);

	(void)state;
	assert_int_equal(migration_pages_check(p, len, mem, &count, &o, &d), 0);
	assert_int_equal(count, 3);
	assert_int_equal(migration_page_offset(o, 2), mem - 4096);
	assert_int_equal(d[2 * MIGRATION_PAGE_SIZE], 3);
	/* Short, long, empty. */
	assert_int_equal(migration_pages_check(p, len - 1, mem, &count, &o, &d), -EBADMSG);
	assert_int_equal(migration_pages_check(p, 4, mem, &count, &o, &d), -EBADMSG);
	migration_put_le(p, 4, 4);
	assert_int_equal(migration_pages_check(p, len, mem, &count, &o, &d), -EBADMSG);
	migration_put_le(p, 0, 4);
	assert_int_equal(migration_pages_check(p, 8, mem, &count, &o, &d), -EBADMSG);
	migration_put_le(p, MIGRATION_MAX_PAGES + 1, 4);
	assert_int_equal(migration_pages_check(p, len, mem, &count, &o, &d), -EBADMSG);
	migration_put_le(p, 0xffffffff, 4);
	assert_int_equal(migration_pages_check(p, len, mem, &count, &o, &d), -EBADMSG);
	migration_put_le(p, 3, 4);
	migration_put_le(p + 4, 1, 4); /* reserved */
	assert_int_equal(migration_pages_check(p, len, mem, &count, &o, &d), -EBADMSG);
	free(p);
	/* Offsets: unaligned, at the end, past it, wrapping. */
	{
		const uint64_t bad[] = {100, mem, mem - 2048, mem + 4096, UINT64_MAX - 4095};

		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			uint64_t one[1] = {bad[i]};

			p = pages_payload(1, one, &len);
			assert_int_equal(migration_pages_check(p, len, mem, &count, &o, &d),
					 -EBADMSG);
			free(p);
		}
		assert_non_null(strstr(log_last_error(), "outside the"));
	}
}

static void pair(struct migration_stream *a, struct migration_stream *b)
{
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	*a = (struct migration_stream){.fd = sv[0], .timeout_ms = 2000};
	*b = (struct migration_stream){.fd = sv[1], .timeout_ms = 2000};
}

static void test_round_trip(void **state)
{
	struct migration_stream a, b;
	struct migration_frame f;
	uint8_t *big = malloc(3 << 20);
	struct iovec parts[2] = {{(void *)"head", 4}, {big, 3 << 20}};
	pid_t child;
	int status;

	(void)state;
	pair(&a, &b);
	for (size_t i = 0; i < (3 << 20); i++)
		big[i] = (uint8_t)(i * 7);
	/* Empty, and larger than the socket's buffer (the reader drains while the writer waits:
	 * send in a child). */
	assert_int_equal(migration_send(&a, MIGRATION_READY, NULL, 0), 0);
	assert_int_equal(migration_recv(&b, &f), 0);
	assert_int_equal(f.type, MIGRATION_READY);
	assert_int_equal(f.length, 0);
	assert_null(f.payload);
	child = fork();
	if (child == 0)
		_exit(migration_send(&a, MIGRATION_STATE, parts, 2) ? 1 : 0);
	assert_int_equal(migration_recv(&b, &f), 0);
	assert_int_equal(f.type, MIGRATION_STATE);
	assert_int_equal(f.length, 4 + (3 << 20));
	assert_memory_equal(f.payload, "head", 4);
	assert_memory_equal(f.payload + 4, big, 3 << 20);
	migration_frame_free(&f);
	assert_int_equal(waitpid(child, &status, 0), child);
	assert_int_equal(status, 0);
	assert_int_equal(b.bytes_received, 2 * MIGRATION_FRAME_HEADER + 4 + (3 << 20));

	/* The peer's refusal. */
	migration_send_error(&a, "no room\nfor you");
	assert_int_equal(migration_recv(&b, &f), -ECONNREFUSED);
	assert_string_equal(log_last_error(), "the other side refused: no room?for you");

	/* An empty refusal (found by fuzzing: its payload is NULL). */
	assert_int_equal(migration_send(&a, MIGRATION_ERROR, NULL, 0), 0);
	assert_int_equal(migration_recv(&b, &f), -ECONNREFUSED);
	assert_string_equal(log_last_error(), "the other side refused: (no reason given)");

	/* Silence: a timeout. */
	b.timeout_ms = 200;
	assert_int_equal(migration_recv(&b, &f), -ETIMEDOUT);
	/* Cancelled. */
	{
		bool cancel = true;

		b.cancel = &cancel;
		b.timeout_ms = 5000;
		assert_int_equal(migration_recv(&b, &f), -ECANCELED);
		b.cancel = NULL;
	}
	close(a.fd);
	close(b.fd);
	free(big);
}

/* Writes a PAGES frame of n pages at offs (its header made by migration_make_header) to fd;
 * payload_edit, when set, changes the payload after the header was made. */
static void write_pages(int fd, uint32_t n, const uint64_t *offs, void (*edit)(uint8_t *, size_t))
{
	uint8_t h[MIGRATION_FRAME_HEADER];
	size_t len;
	uint8_t *p = pages_payload(n, offs, &len);
	struct iovec part = {p, len};

	migration_make_header(h, MIGRATION_PAGES, &part, 1);
	if (edit)
		edit(p, len);
	assert_int_equal(write(fd, h, sizeof(h)), sizeof(h));
	assert_int_equal(write(fd, p, len), (ssize_t)len);
	free(p);
}

static void flip_last_page_byte(uint8_t *p, size_t len)
{
	p[len - 1] ^= 0xff;
}

static void flip_offset_byte(uint8_t *p, size_t len)
{
	(void)len;
	p[8] ^= 0x10; /* the first offset: 0 becomes 0x10, inside but unaligned */
}

/* PAGES into the memory file: the pages land where their offsets say (runs and lone pages,
 * given in any order); the CRC covers the count and offsets, so a changed offset is refused
 * before any page is written, while a changed page byte is not the CRC's to catch (the
 * transport's). Other frames come out as from migration_recv. */
/* migration_recv_into, then the memory file as it is after it, in mem. */
static int recv_into(struct migration_stream *b, struct migration_frame *f, int memfd,
		     uint8_t *mem, uint64_t mem_bytes, uint8_t *scratch, uint32_t *pages)
{
	int ret = migration_recv_into(b, f, memfd, mem_bytes, scratch, pages);

	assert_int_equal(pread(memfd, mem, mem_bytes, 0), (ssize_t)mem_bytes);
	return ret;
}

static void reset(int memfd, uint64_t mem_bytes)
{
	assert_int_equal(ftruncate(memfd, 0), 0);
	assert_int_equal(ftruncate(memfd, (off_t)mem_bytes), 0);
}

static void test_recv_into(void **state)
{
	const uint64_t mem_bytes = 1 << 20;
	uint8_t *mem = calloc(1, mem_bytes), *scratch = malloc(MIGRATION_MAX_PAGES * 4096);
	int memfd = memfd_create("test-migration", MFD_CLOEXEC);
	struct migration_stream a, b;
	struct migration_frame f;
	uint32_t pages;

	(void)state;
	assert_true(memfd >= 0);
	assert_int_equal(ftruncate(memfd, (off_t)mem_bytes), 0);
	pair(&a, &b);
	{
		uint64_t offs[4] = {8192, 12288, 0, mem_bytes - 4096};

		write_pages(a.fd, 4, offs, NULL);
		assert_int_equal(recv_into(&b, &f, memfd, mem, mem_bytes, scratch, &pages), 0);
		assert_int_equal(f.type, MIGRATION_PAGES);
		assert_null(f.payload);
		assert_int_equal(pages, 4);
		assert_int_equal(mem[8192], 1);
		assert_int_equal(mem[12288 + 4095], 2);
		assert_int_equal(mem[0], 3);
		assert_int_equal(mem[mem_bytes - 1], 4);
		assert_int_equal(mem[4096], 0);
	}
	/* Any other frame is received whole. */
	assert_int_equal(migration_send(&a, MIGRATION_STATE,
					&(struct iovec){(void *)"state", 5}, 1), 0);
	assert_int_equal(recv_into(&b, &f, memfd, mem, mem_bytes, scratch, &pages), 0);
	assert_int_equal(f.type, MIGRATION_STATE);
	assert_int_equal(pages, 0);
	assert_memory_equal(f.payload, "state", 5);
	migration_frame_free(&f);
	/* A page's byte changed on the way: not the CRC's (the transport's); it lands. */
	{
		uint64_t offs[1] = {4096};

		write_pages(a.fd, 1, offs, flip_last_page_byte);
		assert_int_equal(recv_into(&b, &f, memfd, mem, mem_bytes, scratch, &pages), 0);
		assert_int_equal(mem[8191], 1 ^ 0xff);
	}
	/* An offset changed on the way: the CRC refuses the frame, nothing is written. */
	{
		uint64_t offs[1] = {0};

		reset(memfd, mem_bytes);
		write_pages(a.fd, 1, offs, flip_offset_byte);
		assert_int_equal(recv_into(&b, &f, memfd, mem, mem_bytes, scratch, &pages), -EBADMSG);
		assert_non_null(strstr(log_last_error(), "PAGES frame is corrupted"));
		assert_int_equal(mem[0], 0);
		assert_int_equal(mem[0x10], 0);
	}
	close(a.fd);
	close(b.fd);
	/* Offsets outside the memory (with a good CRC): refused, nothing written. */
	{
		const uint64_t bad[] = {100, mem_bytes, mem_bytes - 2048, UINT64_MAX - 4095};

		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			uint64_t offs[2] = {0, bad[i]};

			pair(&a, &b);
			reset(memfd, mem_bytes);
			write_pages(a.fd, 2, offs, NULL);
			assert_int_equal(recv_into(&b, &f, memfd, mem, mem_bytes, scratch, &pages),
					 -EBADMSG);
			assert_non_null(strstr(log_last_error(), "outside the"));
			assert_int_equal(mem[0], 0);
			close(a.fd);
			close(b.fd);
		}
	}
	/* A length that does not match the count, a count out of range, a frame too short for
	 * one: refused before any page is read. */
	{
		uint8_t h[MIGRATION_FRAME_HEADER], head[16] = {0};
		struct iovec part = {head, sizeof(head)};
		const uint32_t counts[] = {1, 0, MIGRATION_MAX_PAGES + 1};

		for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
			pair(&a, &b);
			migration_put_le(head, counts[i], 4);
			migration_make_header(h, MIGRATION_PAGES, &part, 1);
			assert_int_equal(write(a.fd, h, sizeof(h)), sizeof(h));
			assert_int_equal(write(a.fd, head, sizeof(head)), sizeof(head));
			assert_int_equal(recv_into(&b, &f, memfd, mem, mem_bytes, scratch, &pages),
					 -EBADMSG);
			assert_non_null(strstr(log_last_error(), "PAGES frame of"));
			close(a.fd);
			close(b.fd);
		}
		pair(&a, &b);
		part.iov_len = 4;
		migration_make_header(h, MIGRATION_PAGES, &part, 1);
		assert_int_equal(write(a.fd, h, sizeof(h)), sizeof(h));
		assert_int_equal(write(a.fd, head, 4), 4);
		assert_int_equal(recv_into(&b, &f, memfd, mem, mem_bytes, scratch, &pages), -EBADMSG);
		assert_non_null(strstr(log_last_error(), "a PAGES frame of 4 bytes"));
		close(a.fd);
		close(b.fd);
	}
	/* The end in the middle of the pages. */
	{
		uint8_t h[MIGRATION_FRAME_HEADER];
		size_t len;
		uint64_t offs[2] = {0, 4096};
		uint8_t *p = pages_payload(2, offs, &len);
		struct iovec part = {p, len};

		pair(&a, &b);
		migration_make_header(h, MIGRATION_PAGES, &part, 1);
		assert_int_equal(write(a.fd, h, sizeof(h)), sizeof(h));
		assert_int_equal(write(a.fd, p, len - 100), (ssize_t)(len - 100));
		close(a.fd);
		assert_int_equal(recv_into(&b, &f, memfd, mem, mem_bytes, scratch, &pages), -EPIPE);
		assert_non_null(strstr(log_last_error(), "in the middle of a frame"));
		close(b.fd);
		free(p);
	}
	close(memfd);
	free(scratch);
	free(mem);
}

static void test_hostile_streams(void **state)
{
	struct migration_stream a, b;
	struct migration_frame f;
	uint8_t h[MIGRATION_FRAME_HEADER];

	(void)state;
	/* A payload that does not match its CRC. */
	pair(&a, &b);
	header_of(h, MIGRATION_CONFIG, "good");
	assert_int_equal(write(a.fd, h, sizeof(h)), sizeof(h));
	assert_int_equal(write(a.fd, "evil", 4), 4);
	assert_int_equal(migration_recv(&b, &f), -EBADMSG);
	assert_non_null(strstr(log_last_error(), "CONFIG frame is corrupted"));
	assert_null(f.payload);
	/* A header, then the end in the middle of the payload. */
	header_of(h, MIGRATION_CONFIG, "a long payload");
	assert_int_equal(write(a.fd, h, sizeof(h)), sizeof(h));
	assert_int_equal(write(a.fd, "a lo", 4), 4);
	close(a.fd);
	assert_int_equal(migration_recv(&b, &f), -EPIPE);
	assert_non_null(strstr(log_last_error(), "in the middle of a frame"));
	close(b.fd);
	/* Half a header. */
	pair(&a, &b);
	assert_int_equal(write(a.fd, h, 10), 10);
	close(a.fd);
	assert_int_equal(migration_recv(&b, &f), -EPIPE);
	close(b.fd);
	/* A header claiming 64 MiB and then nothing: refused for the timeout, not waited for
	 * forever, and what was allocated is freed. */
	pair(&a, &b);
	b.timeout_ms = 200;
	header_of(h, MIGRATION_STATE, "x");
	migration_put_le(h + 12, 64u << 20, 4);
	reseal(h);
	assert_int_equal(write(a.fd, h, sizeof(h)), sizeof(h));
	assert_int_equal(migration_recv(&b, &f), -ETIMEDOUT);
	/* Garbage. */
	{
		uint8_t junk[4096];

		for (size_t i = 0; i < sizeof(junk); i++)
			junk[i] = (uint8_t)(i * 13 + 5);
		assert_int_equal(write(a.fd, junk, sizeof(junk)), sizeof(junk));
		assert_int_equal(migration_recv(&b, &f), -EPROTO);
	}
	close(a.fd);
	close(b.fd);
	/* Sending to a peer that is gone fails, and raises no SIGPIPE. */
	pair(&a, &b);
	close(b.fd);
	assert_int_equal(migration_send(&a, MIGRATION_HELLO, NULL, 0), -EPIPE);
	close(a.fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_urls),
	    cmocka_unit_test(test_headers),
	    cmocka_unit_test(test_pages),
	    cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_recv_into),
	    cmocka_unit_test(test_hostile_streams),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
