#include "gdb/rsp.h"

#include <errno.h>
#include <string.h>

void rsp_reader_init(struct rsp_reader *r)
{
	memset(r, 0, sizeof(*r));
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static void put(struct rsp_reader *r, uint8_t c)
{
	if (r->len < RSP_MAX_PACKET)
		r->buf[r->len++] = c;
	else
		r->overflow = true;
}

enum rsp_event rsp_reader_feed(struct rsp_reader *r, uint8_t c)
{
	int v;

	switch (r->state) {
	case RSP_IDLE:
		if (c == '$') {
			r->state = RSP_DATA;
			r->len = 0;
			r->sum = 0;
			r->overflow = false;
		} else if (c == 0x03) {
			return RSP_EV_INTERRUPT;
		} else if (c == '+') {
			return RSP_EV_ACK;
		} else if (c == '-') {
			return RSP_EV_NAK;
		}
		/* Anything else between packets is noise: ignored, as gdb's own stubs do. */
		return RSP_EV_NONE;
	case RSP_DATA:
		if (c == '#') {
			r->state = RSP_CSUM1;
			return RSP_EV_NONE;
		}
		if (c == '$') { /* a new packet starts: the broken one is dropped */
			r->len = 0;
			r->sum = 0;
			r->overflow = false;
			return RSP_EV_NONE;
		}
		r->sum += c;
		if (c == '}')
			r->state = RSP_ESCAPE;
		else
			put(r, c);
		return RSP_EV_NONE;
	case RSP_ESCAPE:
		r->sum += c;
		put(r, c ^ 0x20);
		r->state = RSP_DATA;
		return RSP_EV_NONE;
	case RSP_CSUM1:
		v = hexval(c);
		r->csum = (uint8_t)((v < 0 ? 0 : v) << 4);
		r->state = v < 0 ? RSP_IDLE : RSP_CSUM2;
		return v < 0 ? RSP_EV_BAD_CHECKSUM : RSP_EV_NONE;
	case RSP_CSUM2:
		v = hexval(c);
		r->state = RSP_IDLE;
		if (v < 0 || (uint8_t)(r->csum | v) != r->sum)
			return RSP_EV_BAD_CHECKSUM;
		if (r->overflow)
			return RSP_EV_TOO_LONG;
		r->buf[r->len] = '\0';
		return RSP_EV_PACKET;
	}
	r->state = RSP_IDLE;
	return RSP_EV_NONE;
}

int rsp_frame(const void *data, size_t len, char *out, size_t cap)
{
	static const char digits[] = "0123456789abcdef";
	const uint8_t *d = data;
	size_t n = 0;
	uint8_t sum = 0;

	if (cap < 4)
		return -ENOSPC;
	out[n++] = '$';
	for (size_t i = 0; i < len; i++) {
		uint8_t c = d[i];
		bool esc = c == '$' || c == '#' || c == '}' || c == '*';

		if (n + (esc ? 2 : 1) + 3 > cap)
			return -ENOSPC;
		if (esc) {
			out[n++] = '}';
			sum += '}';
			c ^= 0x20;
		}
		out[n++] = (char)c;
		sum += c;
	}
	out[n++] = '#';
	out[n++] = digits[sum >> 4];
	out[n++] = digits[sum & 15];
	return (int)n;
}

void rsp_hex_encode(const void *data, size_t len, char *hex)
{
	static const char digits[] = "0123456789abcdef";
	const uint8_t *d = data;

	for (size_t i = 0; i < len; i++) {
		hex[2 * i] = digits[d[i] >> 4];
		hex[2 * i + 1] = digits[d[i] & 15];
	}
}

int rsp_hex_decode(const char *hex, size_t hex_len, void *out, size_t len)
{
	uint8_t *o = out;

	if (len > hex_len / 2)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		int hi = hexval((unsigned char)hex[2 * i]), lo = hexval((unsigned char)hex[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -EINVAL;
		o[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

int rsp_parse_hex(const char **p, const char *end, uint64_t *out)
{
	const char *s = *p;
	uint64_t v = 0;
	int n = 0;

	while (s < end && hexval((unsigned char)*s) >= 0) {
		if (++n > 16)
			return -EINVAL;
		v = v << 4 | (uint64_t)hexval((unsigned char)*s);
		s++;
	}
	if (n == 0)
		return -EINVAL;
	*p = s;
	*out = v;
	return 0;
}

int rsp_parse_thread(const char **p, const char *end, int64_t *out)
{
	uint64_t v;

	if (*p + 2 <= end && (*p)[0] == '-' && (*p)[1] == '1') {
		*p += 2;
		*out = -1;
		return 0;
	}
	/* Multiprocess form p<pid>.<tid>: the pid is skiff's one process. */
	if (*p < end && **p == 'p') {
		(*p)++;
		if (*p + 2 <= end && (*p)[0] == '-' && (*p)[1] == '1')
			*p += 2;
		else if (rsp_parse_hex(p, end, &v))
			return -EINVAL;
		if (*p >= end || **p != '.') {
			*out = -1;
			return 0;
		}
		(*p)++;
		return rsp_parse_thread(p, end, out);
	}
	if (rsp_parse_hex(p, end, &v) || v > INT32_MAX)
		return -EINVAL;
	*out = (int64_t)v;
	return 0;
}

static bool starts(const char *s, const char *end, const char *prefix)
{
	size_t n = strlen(prefix);

	return (size_t)(end - s) >= n && memcmp(s, prefix, n) == 0;
}

/* "addr,len" */
static int parse_addr_len(const char **p, const char *end, struct rsp_cmd *cmd)
{
	if (rsp_parse_hex(p, end, &cmd->addr) || *p >= end || **p != ',')
		return -EINVAL;
	(*p)++;
	return rsp_parse_hex(p, end, &cmd->len);
}

static int parse_vcont(const char *s, const char *end, struct rsp_cmd *cmd)
{
	cmd->kind = RSP_CMD_VCONT;
	cmd->nr_vcont = 0;
	while (s < end) {
		struct rsp_vcont_action *a;
		uint64_t sig;

		if (*s++ != ';' || s >= end || cmd->nr_vcont == RSP_MAX_VCONT)
			return -EINVAL;
		a = &cmd->vcont[cmd->nr_vcont++];
		a->action = *s++;
		a->thread = -1;
		switch (a->action) {
		case 'c':
		case 's':
			break;
		case 'C':
		case 'S':
			if (rsp_parse_hex(&s, end, &sig) || sig > 0xff)
				return -EINVAL;
			a->action = (char)(a->action - 'A' + 'a');
			break;
		default:
			return -EINVAL;
		}
		if (s < end && *s == ':') {
			s++;
			if (rsp_parse_thread(&s, end, &a->thread))
				return -EINVAL;
		}
	}
	return cmd->nr_vcont ? 0 : -EINVAL;
}

int rsp_parse_command(const uint8_t *pkt, size_t len, struct rsp_cmd *cmd, uint8_t *scratch,
		      size_t scratch_cap)
{
	const char *s = (const char *)pkt, *end = s + len, *p = s + 1;
	uint64_t v;

	memset(cmd, 0, sizeof(*cmd));
	cmd->kind = RSP_CMD_UNKNOWN;
	if (len == 0)
		return 0;
	switch (s[0]) {
	case '?':
		cmd->kind = RSP_CMD_HALT_REASON;
		return len == 1 ? 0 : -EINVAL;
	case 'g':
		cmd->kind = RSP_CMD_READ_REGS;
		return len == 1 ? 0 : -EINVAL;
	case 'G':
		cmd->kind = RSP_CMD_WRITE_REGS;
		if ((len - 1) % 2 || (len - 1) / 2 > scratch_cap ||
		    rsp_hex_decode(p, len - 1, scratch, (len - 1) / 2))
			return -EINVAL;
		cmd->data = scratch;
		cmd->data_len = (len - 1) / 2;
		return 0;
	case 'p':
		cmd->kind = RSP_CMD_READ_REG;
		if (rsp_parse_hex(&p, end, &cmd->addr) || p != end)
			return -EINVAL;
		return 0;
	case 'P':
		cmd->kind = RSP_CMD_WRITE_REG;
		if (rsp_parse_hex(&p, end, &cmd->addr) || p >= end || *p != '=')
			return -EINVAL;
		p++;
		if ((end - p) % 2 || (size_t)(end - p) / 2 > scratch_cap || p == end ||
		    rsp_hex_decode(p, (size_t)(end - p), scratch, (size_t)(end - p) / 2))
			return -EINVAL;
		cmd->data = scratch;
		cmd->data_len = (size_t)(end - p) / 2;
		return 0;
	case 'm':
		cmd->kind = RSP_CMD_READ_MEM;
		if (parse_addr_len(&p, end, cmd) || p != end || cmd->len > RSP_MAX_MEM)
			return -EINVAL;
		return 0;
	case 'M':
		cmd->kind = RSP_CMD_WRITE_MEM;
		if (parse_addr_len(&p, end, cmd) || p >= end || *p != ':' ||
		    cmd->len > RSP_MAX_MEM || cmd->len > scratch_cap)
			return -EINVAL;
		p++;
		if ((size_t)(end - p) != cmd->len * 2 ||
		    rsp_hex_decode(p, (size_t)(end - p), scratch, cmd->len))
			return -EINVAL;
		cmd->data = scratch;
		cmd->data_len = cmd->len;
		return 0;
	case 'X':
		cmd->kind = RSP_CMD_WRITE_MEM;
		if (parse_addr_len(&p, end, cmd) || p >= end || *p != ':' ||
		    cmd->len > RSP_MAX_MEM || cmd->len > scratch_cap)
			return -EINVAL;
		p++;
		/* The reader already undid the escapes: what is left is the data itself. */
		if ((size_t)(end - p) != cmd->len)
			return -EINVAL;
		memcpy(scratch, p, cmd->len);
		cmd->data = scratch;
		cmd->data_len = cmd->len;
		return 0;
	case 'H':
		cmd->kind = RSP_CMD_SET_THREAD;
		if (len < 3 || (s[1] != 'g' && s[1] != 'c'))
			return -EINVAL;
		cmd->op = s[1];
		p = s + 2;
		if (rsp_parse_thread(&p, end, &cmd->thread) || p != end)
			return -EINVAL;
		return 0;
	case 'T':
		cmd->kind = RSP_CMD_THREAD_ALIVE;
		if (rsp_parse_thread(&p, end, &cmd->thread) || p != end)
			return -EINVAL;
		return 0;
	case 'c':
	case 's':
		cmd->kind = s[0] == 'c' ? RSP_CMD_CONTINUE : RSP_CMD_STEP;
		if (len > 1) {
			if (rsp_parse_hex(&p, end, &cmd->addr) || p != end)
				return -EINVAL;
			cmd->has_addr = true;
		}
		return 0;
	case 'Z':
	case 'z':
		cmd->kind = s[0] == 'Z' ? RSP_CMD_INSERT_BP : RSP_CMD_REMOVE_BP;
		if (rsp_parse_hex(&p, end, &v) || v > RSP_WP_ACCESS || p >= end || *p != ',')
			return -EINVAL;
		cmd->bp_type = (int)v;
		p++;
		if (parse_addr_len(&p, end, cmd))
			return -EINVAL;
		/* Conditions and commands (";X...") are target-side extras skiff does not offer: it
		 * did not announce them, so a client sending them is refused. */
		return p == end ? 0 : -EINVAL;
	case 'D':
		cmd->kind = RSP_CMD_DETACH;
		return 0;
	case 'k':
		cmd->kind = RSP_CMD_KILL;
		return 0;
	case 'v':
		if (len == 6 && starts(s, end, "vCont?")) {
			cmd->kind = RSP_CMD_VCONT_QUERY;
			return 0;
		}
		if (starts(s, end, "vCont;"))
			return parse_vcont(s + 5, end, cmd);
		if (starts(s, end, "vKill")) {
			cmd->kind = RSP_CMD_KILL;
			return 0;
		}
		return 0; /* vMustReplyEmpty, vFile, ...: unsupported */
	case 'q':
		if (starts(s, end, "qSupported")) {
			cmd->kind = RSP_CMD_QSUPPORTED;
			return 0;
		}
		if (len == 9 && starts(s, end, "qAttached")) {
			cmd->kind = RSP_CMD_QATTACHED;
			return 0;
		}
		if (starts(s, end, "qAttached:")) {
			cmd->kind = RSP_CMD_QATTACHED;
			return 0;
		}
		if (len == 2 && s[1] == 'C') {
			cmd->kind = RSP_CMD_QC;
			return 0;
		}
		if (len == 12 && starts(s, end, "qfThreadInfo")) {
			cmd->kind = RSP_CMD_QFTHREADINFO;
			return 0;
		}
		if (len == 12 && starts(s, end, "qsThreadInfo")) {
			cmd->kind = RSP_CMD_QSTHREADINFO;
			return 0;
		}
		if (starts(s, end, "qThreadExtraInfo,")) {
			cmd->kind = RSP_CMD_QTHREAD_EXTRA;
			p = s + 17;
			if (rsp_parse_thread(&p, end, &cmd->thread) || p != end)
				return -EINVAL;
			return 0;
		}
		if (starts(s, end, "qXfer:features:read:")) {
			const char *annex = s + 20, *colon;
			size_t n;

			cmd->kind = RSP_CMD_QXFER_FEATURES;
			colon = memchr(annex, ':', (size_t)(end - annex));
			if (!colon)
				return -EINVAL;
			n = (size_t)(colon - annex);
			if (n == 0 || n >= sizeof(cmd->annex))
				return -EINVAL;
			memcpy(cmd->annex, annex, n);
			cmd->annex[n] = '\0';
			p = colon + 1;
			if (parse_addr_len(&p, end, cmd) || p != end)
				return -EINVAL;
			return 0;
		}
		return 0;
	case 'Q':
		if (len == 15 && starts(s, end, "QStartNoAckMode"))
			cmd->kind = RSP_CMD_START_NOACK;
		return 0;
	default:
		return 0;
	}
}
