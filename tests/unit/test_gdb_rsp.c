/* The GDB remote protocol layer (gdb/rsp.h), alone: packets framed and unframed with their
 * checksums and escapes, acks, the interrupt byte; every command the stub serves parsed; and
 * hostile input: bad checksums, packets over the bound, numbers that overflow, lengths beyond
 * what a packet holds or a reply can carry, truncated and garbage commands, random bytes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "gdb/rsp.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct rsp_reader reader;
static uint8_t scratch[RSP_MAX_PACKET];

/* Feeds `s` (len bytes); returns the last event other than RSP_EV_NONE, counting them. */
static enum rsp_event feed(const void *s, size_t len, int *nr_events)
{
	enum rsp_event last = RSP_EV_NONE;
	const uint8_t *p = s;

	*nr_events = 0;
	for (size_t i = 0; i < len; i++) {
		enum rsp_event e = rsp_reader_feed(&reader, p[i]);

		if (e != RSP_EV_NONE) {
			last = e;
			(*nr_events)++;
		}
	}
	return last;
}

static void test_reader_packets_and_acks(void **state)
{
	int n;

	rsp_reader_init(&reader);
	assert_int_equal(feed("$g#67", 5, &n), RSP_EV_PACKET);
	assert_int_equal(n, 1);
	assert_int_equal(reader.len, 1);
	assert_memory_equal(reader.buf, "g", 1);
	assert_int_equal(feed("+", 1, &n), RSP_EV_ACK);
	assert_int_equal(feed("-", 1, &n), RSP_EV_NAK);
	assert_int_equal(feed("\x03", 1, &n), RSP_EV_INTERRUPT);
	/* Upper-case checksum digits, noise between packets. */
	assert_int_equal(feed("xyz$?#3F", 8, &n), RSP_EV_PACKET);
	assert_int_equal(n, 1);
	assert_memory_equal(reader.buf, "?", 1);
	/* An escaped byte: }] is ']' ^ 0x20 = '}' */
	assert_int_equal(feed("$X0,1:}]#", 9, &n), RSP_EV_NONE);
	{
		char cs[3];
		uint8_t sum = 0;

		for (const char *c = "X0,1:}]"; *c; c++)
			sum += (uint8_t)*c;
		snprintf(cs, sizeof(cs), "%02x", sum);
		assert_int_equal(feed(cs, 2, &n), RSP_EV_PACKET);
	}
	assert_int_equal(reader.len, 6);
	assert_memory_equal(reader.buf, "X0,1:}", 6);
}

static void test_reader_bad_checksum(void **state)
{
	int n;

	rsp_reader_init(&reader);
	assert_int_equal(feed("$g#00", 5, &n), RSP_EV_BAD_CHECKSUM);
	assert_int_equal(feed("$g#zz", 5, &n), RSP_EV_BAD_CHECKSUM);
	assert_int_equal(n, 1);
	/* The reader is back between packets: the next good one goes through. */
	assert_int_equal(feed("$g#67", 5, &n), RSP_EV_PACKET);
	/* A '$' inside a packet starts over. */
	assert_int_equal(feed("$m0,$g#67", 9, &n), RSP_EV_PACKET);
	assert_memory_equal(reader.buf, "g", 1);
}

static void test_reader_oversized_packet_dropped(void **state)
{
	size_t len = RSP_MAX_PACKET * 3;
	char *big = malloc(len + 4);
	uint8_t sum = 0;
	int n;

	assert_non_null(big);
	big[0] = '$';
	for (size_t i = 1; i <= len; i++) {
		big[i] = 'a';
		sum += 'a';
	}
	rsp_reader_init(&reader);
	assert_int_equal(feed(big, len + 1, &n), RSP_EV_NONE);
	assert_true(reader.len <= RSP_MAX_PACKET);
	snprintf(big, 4, "#%02x", sum);
	assert_int_equal(feed(big, 3, &n), RSP_EV_TOO_LONG);
	free(big);
	assert_int_equal(feed("$g#67", 5, &n), RSP_EV_PACKET);
}

static void test_frame_escapes_and_checksum(void **state)
{
	char out[64];
	int n = rsp_frame("a$#}*b", 6, out, sizeof(out));
	int ev = 0;

	assert_int_equal(n, 1 + 10 + 3);
	assert_memory_equal(out, "$a}\x04}\x03}]}\nb#", 12);
	/* What we frame, our reader reads back. */
	rsp_reader_init(&reader);
	assert_int_equal(feed(out, (size_t)n, &ev), RSP_EV_PACKET);
	assert_int_equal(reader.len, 6);
	assert_memory_equal(reader.buf, "a$#}*b", 6);
	assert_int_equal(rsp_frame("abcdef", 6, out, 8), -ENOSPC);
	assert_int_equal(rsp_frame("", 0, out, 3), -ENOSPC);
	assert_int_equal(rsp_frame("", 0, out, 4), 4);
}

static void test_hex(void **state)
{
	uint8_t b[4];
	char h[8];
	const char *p, *end;
	uint64_t v;

	rsp_hex_encode("\x01\xab\xff\x00", 4, h);
	assert_memory_equal(h, "01abff00", 8);
	assert_int_equal(rsp_hex_decode("01ABff00", 8, b, 4), 0);
	assert_memory_equal(b, "\x01\xab\xff\x00", 4);
	assert_int_equal(rsp_hex_decode("01ab", 4, b, 4), -EINVAL); /* short */
	assert_int_equal(rsp_hex_decode("0g", 2, b, 1), -EINVAL);
	p = "ffffffffffffffff,";
	end = p + strlen(p);
	assert_int_equal(rsp_parse_hex(&p, end, &v), 0);
	assert_true(v == UINT64_MAX);
	assert_int_equal(*p, ',');
	p = "10000000000000000";
	end = p + strlen(p);
	assert_int_equal(rsp_parse_hex(&p, end, &v), -EINVAL); /* 17 digits: overflow */
	p = ",";
	assert_int_equal(rsp_parse_hex(&p, p + 1, &v), -EINVAL); /* no digit */
}

static int parse(const char *s, struct rsp_cmd *c)
{
	return rsp_parse_command((const uint8_t *)s, strlen(s), c, scratch, sizeof(scratch));
}

static void test_commands(void **state)
{
	struct rsp_cmd c;

	assert_int_equal(parse("?", &c), 0);
	assert_int_equal(c.kind, RSP_CMD_HALT_REASON);
	assert_int_equal(parse("g", &c), 0);
	assert_int_equal(c.kind, RSP_CMD_READ_REGS);
	assert_int_equal(parse("G0102", &c), 0);
	assert_int_equal(c.kind, RSP_CMD_WRITE_REGS);
	assert_int_equal(c.data_len, 2);
	assert_memory_equal(c.data, "\x01\x02", 2);
	assert_int_equal(parse("p10", &c), 0);
	assert_int_equal(c.kind, RSP_CMD_READ_REG);
	assert_int_equal(c.addr, 16);
	assert_int_equal(parse("P1=0100000000000000", &c), 0);
	assert_int_equal(c.kind, RSP_CMD_WRITE_REG);
	assert_int_equal(c.addr, 1);
	assert_int_equal(c.data_len, 8);
	assert_int_equal(parse("mffffffff80001000,40", &c), 0);
	assert_int_equal(c.kind, RSP_CMD_READ_MEM);
	assert_true(c.addr == 0xffffffff80001000ULL);
	assert_int_equal(c.len, 0x40);
	assert_int_equal(parse("M1000,2:abcd", &c), 0);
	assert_int_equal(c.kind, RSP_CMD_WRITE_MEM);
	assert_memory_equal(c.data, "\xab\xcd", 2);
	assert_int_equal(rsp_parse_command((const uint8_t *)"X10,3:a\0b", 9, &c, scratch,
					   sizeof(scratch)),
			 0);
	assert_int_equal(c.kind, RSP_CMD_WRITE_MEM);
	assert_memory_equal(c.data, "a\0b", 3);
	assert_int_equal(parse("Z0,ffffffff81000000,1", &c), 0);
	assert_int_equal(c.kind, RSP_CMD_INSERT_BP);
	assert_int_equal(c.bp_type, RSP_BP_SW);
	assert_int_equal(parse("z2,1000,8", &c), 0);
	assert_int_equal(c.kind, RSP_CMD_REMOVE_BP);
	assert_int_equal(c.bp_type, RSP_WP_WRITE);
	assert_int_equal(c.len, 8);
	assert_int_equal(parse("Hg2", &c), 0);
	assert_int_equal(c.kind, RSP_CMD_SET_THREAD);
	assert_int_equal(c.op, 'g');
	assert_int_equal(c.thread, 2);
	assert_int_equal(parse("Hc-1", &c), 0);
	assert_int_equal(c.thread, -1);
	assert_int_equal(parse("Hgp1.3", &c), 0);
	assert_int_equal(c.thread, 3);
	assert_int_equal(parse("T1", &c), 0);
	assert_int_equal(c.kind, RSP_CMD_THREAD_ALIVE);
	assert_int_equal(parse("c", &c), 0);
	assert_int_equal(c.kind, RSP_CMD_CONTINUE);
	assert_false(c.has_addr);
	assert_int_equal(parse("s", &c), 0);
	assert_int_equal(c.kind, RSP_CMD_STEP);
	assert_int_equal(parse("vCont;s:2;c", &c), 0);
	assert_int_equal(c.kind, RSP_CMD_VCONT);
	assert_int_equal(c.nr_vcont, 2);
	assert_int_equal(c.vcont[0].action, 's');
	assert_int_equal(c.vcont[0].thread, 2);
	assert_int_equal(c.vcont[1].action, 'c');
	assert_int_equal(c.vcont[1].thread, -1);
	assert_int_equal(parse("vCont;C05:1", &c), 0);
	assert_int_equal(c.vcont[0].action, 'c');
	assert_int_equal(parse("vCont?", &c), 0);
	assert_int_equal(c.kind, RSP_CMD_VCONT_QUERY);
	assert_int_equal(parse("qXfer:features:read:target.xml:0,ffb", &c), 0);
	assert_int_equal(c.kind, RSP_CMD_QXFER_FEATURES);
	assert_string_equal(c.annex, "target.xml");
	assert_int_equal(c.len, 0xffb);
	assert_int_equal(parse("qSupported:multiprocess+;swbreak+", &c), 0);
	assert_int_equal(c.kind, RSP_CMD_QSUPPORTED);
	assert_int_equal(parse("qAttached:1", &c), 0);
	assert_int_equal(c.kind, RSP_CMD_QATTACHED);
	assert_int_equal(parse("qC", &c), 0);
	assert_int_equal(c.kind, RSP_CMD_QC);
	assert_int_equal(parse("qfThreadInfo", &c), 0);
	assert_int_equal(c.kind, RSP_CMD_QFTHREADINFO);
	assert_int_equal(parse("qsThreadInfo", &c), 0);
	assert_int_equal(c.kind, RSP_CMD_QSTHREADINFO);
	assert_int_equal(parse("qThreadExtraInfo,1", &c), 0);
	assert_int_equal(c.kind, RSP_CMD_QTHREAD_EXTRA);
	assert_int_equal(parse("D", &c), 0);
	assert_int_equal(c.kind, RSP_CMD_DETACH);
	assert_int_equal(parse("D;1", &c), 0);
	assert_int_equal(c.kind, RSP_CMD_DETACH);
	assert_int_equal(parse("k", &c), 0);
	assert_int_equal(c.kind, RSP_CMD_KILL);
	assert_int_equal(parse("vKill;1", &c), 0);
	assert_int_equal(c.kind, RSP_CMD_KILL);
	assert_int_equal(parse("QStartNoAckMode", &c), 0);
	assert_int_equal(c.kind, RSP_CMD_START_NOACK);
	/* Unsupported: empty reply, not an error. */
	assert_int_equal(parse("vMustReplyEmpty", &c), 0);
	assert_int_equal(c.kind, RSP_CMD_UNKNOWN);
	assert_int_equal(parse("qTStatus", &c), 0);
	assert_int_equal(c.kind, RSP_CMD_UNKNOWN);
	assert_int_equal(parse("", &c), 0);
	assert_int_equal(c.kind, RSP_CMD_UNKNOWN);
}

static void test_hostile_commands(void **state)
{
	static const char *const bad[] = {
		"g1",
		"?x",
		"G012",			/* odd digits */
		"G01zz",
		"p",
		"pzz",
		"p1x",
		"P1",
		"P1=",
		"P1=0",
		"P=00",
		"m",
		"m1000",
		"m1000,",
		"m,10",
		"m1000,10,",
		"m11112222333344445,1", /* address overflows 64 bits */
		"m0,ffffffffffffffff",	/* more than a reply can hold */
		"m0,2000",
		"M1000,2:ab",	  /* shorter than it says */
		"M1000,1:abcd",	  /* longer */
		"M1000,2",
		"M0,ffffffffffffffff:00",
		"X10,5:ab",
		"Z",
		"Z0",
		"Z0,",
		"Z5,1000,1", /* no such type */
		"Z0,1000",
		"Z0,1000,1;X1,00", /* conditions were not offered */
		"Hx1",
		"Hg",
		"Hgzz",
		"Hg100000000", /* beyond a thread id */
		"T",
		"Tzz",
		"cxyz",
		"s1000x",
		"vCont;",
		"vCont;x",
		"vCont;t:1",
		"vCont;c:zz",
		"vCont;C",
		"vCont;c;c;c;c;c;c;c;c;c", /* more actions than threads could ever need */
		"qXfer:features:read:target.xml",
		"qXfer:features:read::0,10",
		"qXfer:features:read:target.xml:0",
		"qXfer:features:read:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa:0,1",
		"qThreadExtraInfo,",
	};
	struct rsp_cmd c;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (parse(bad[i], &c) != -EINVAL)
			fail_msg("'%s' was not refused", bad[i]);
	}
	/* G and M data never overrun a small scratch buffer. */
	assert_int_equal(rsp_parse_command((const uint8_t *)"G01020304", 9, &c, scratch, 2),
			 -EINVAL);
	assert_int_equal(rsp_parse_command((const uint8_t *)"M0,4:01020304", 13, &c, scratch, 2),
			 -EINVAL);
}

/* Random bytes through the reader and the parser: no crash, no read beyond what was given
 * (ASan watches the unit tests too), every event one of the known ones. */
static void test_random_input(void **state)
{
	uint8_t buf[512];
	struct rsp_cmd c;
	unsigned seed = 1;

	rsp_reader_init(&reader);
	for (int round = 0; round < 2000; round++) {
		size_t len = (size_t)(rand_r(&seed) % sizeof(buf));

		for (size_t i = 0; i < len; i++) {
			int r = rand_r(&seed);
			/* Mostly protocol characters, so that the parser sees commands. */
			static const char alphabet[] = "$#}*+-\x03gGpPmMXZzHTcsvCqD?k0123456789abcdef,:;=";

			buf[i] = (r & 0x300) ? (uint8_t)alphabet[(r >> 12) % (sizeof(alphabet) - 1)]
					     : (uint8_t)r;
		}
		for (size_t i = 0; i < len; i++)
			assert_true(rsp_reader_feed(&reader, buf[i]) <= RSP_EV_NAK);
		(void)rsp_parse_command(buf, len, &c, scratch, sizeof(scratch));
		if (len)
			(void)rsp_parse_command(buf + 1, len - 1, &c, scratch, 16);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reader_packets_and_acks),
		cmocka_unit_test(test_reader_bad_checksum),
		cmocka_unit_test(test_reader_oversized_packet_dropped),
		cmocka_unit_test(test_frame_escapes_and_checksum),
		cmocka_unit_test(test_hex),
		cmocka_unit_test(test_commands),
		cmocka_unit_test(test_hostile_commands),
		cmocka_unit_test(test_random_input),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
