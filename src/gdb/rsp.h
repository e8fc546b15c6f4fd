/* The GDB remote serial protocol (RSP), as pure code: framing and unframing packets
 * ($data#cs, acks, the 0x03 interrupt byte, '}' escapes), hex helpers, and the parsing of the
 * commands skiff's stub serves into a `struct rsp_cmd`. Nothing here touches a socket, a vCPU or
 * guest memory (that is vmm/gdb_stub.c), so all of it is unit-tested with hostile input
 * (tests/unit/test_gdb_rsp.c) and fuzzed (tests/fuzz/fuzz_gdb_rsp.c).
 *
 * Bounds: a packet longer than RSP_MAX_PACKET bytes of payload is dropped whole (the reader
 * reports RSP_EV_TOO_LONG once it sees its end); every number is checked for overflow; every
 * length a command names is checked against what the packet holds. Errors: -EINVAL. */
#ifndef SKIFF_GDB_RSP_H
#define SKIFF_GDB_RSP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The payload bound; the stub announces it as PacketSize in qSupported (hex). */
#define RSP_MAX_PACKET 16384

/* The most memory one m/M/X command may move: what fits a reply of RSP_MAX_PACKET hex digits. */
#define RSP_MAX_MEM (RSP_MAX_PACKET / 2 - 16)

enum rsp_event {
	RSP_EV_NONE,	     /* need more bytes */
	RSP_EV_PACKET,	     /* a whole packet with a good checksum: reader->buf[0..len) */
	RSP_EV_BAD_CHECKSUM, /* answer '-' (the client resends) */
	RSP_EV_TOO_LONG,     /* longer than RSP_MAX_PACKET: dropped, answer with an error */
	RSP_EV_INTERRUPT,    /* 0x03 between packets: Ctrl-C */
	RSP_EV_ACK,	     /* '+' */
	RSP_EV_NAK,	     /* '-': resend the last packet */
};

struct rsp_reader {
	enum { RSP_IDLE, RSP_DATA, RSP_ESCAPE, RSP_CSUM1, RSP_CSUM2 } state;
	uint8_t buf[RSP_MAX_PACKET + 1]; /* unescaped payload, NUL-terminated for convenience */
	size_t len;
	bool overflow;
	uint8_t sum; /* of the bytes as sent (escapes included) */
	uint8_t csum;
};

void rsp_reader_init(struct rsp_reader *r);

/* Feeds one byte; returns the event it completes (RSP_EV_NONE when none). After RSP_EV_PACKET,
 * r->buf and r->len hold the payload until the next call. */
enum rsp_event rsp_reader_feed(struct rsp_reader *r, uint8_t byte);

/* Frames `data` as $data#cs into out[cap], escaping '$', '#', '}' and '*'. Returns the framed
 * length, or -ENOSPC when it does not fit. */
int rsp_frame(const void *data, size_t len, char *out, size_t cap);

/* Hex helpers. rsp_hex_encode writes 2*len digits (no NUL). rsp_hex_decode reads exactly
 * 2*len digits from `hex` (which holds hex_len characters): 0, or -EINVAL on a short or
 * non-hex input. */
void rsp_hex_encode(const void *data, size_t len, char *hex);
int rsp_hex_decode(const char *hex, size_t hex_len, void *out, size_t len);

/* Reads a hex number at *p (at least one digit, at most 16, no overflow) up to `end`, and
 * advances *p past it. 0 or -EINVAL. */
int rsp_parse_hex(const char **p, const char *end, uint64_t *out);

enum rsp_cmd_kind {
	RSP_CMD_UNKNOWN,     /* answer "" (unsupported) */
	RSP_CMD_HALT_REASON, /* ? */
	RSP_CMD_READ_REGS,   /* g */
	RSP_CMD_WRITE_REGS,  /* G hex: data/len decoded */
	RSP_CMD_READ_REG,    /* p n */
	RSP_CMD_WRITE_REG,   /* P n=hex */
	RSP_CMD_READ_MEM,    /* m addr,len */
	RSP_CMD_WRITE_MEM,   /* M addr,len:hex and X addr,len:binary */
	RSP_CMD_SET_THREAD,  /* Hg tid / Hc tid (tid 0: any, -1: all) */
	RSP_CMD_THREAD_ALIVE, /* T tid */
	RSP_CMD_CONTINUE,    /* c [addr] */
	RSP_CMD_STEP,	     /* s [addr] */
	RSP_CMD_VCONT,	     /* vCont;action[:tid]... */
	RSP_CMD_VCONT_QUERY, /* vCont? */
	RSP_CMD_INSERT_BP,   /* Z type,addr,kind */
	RSP_CMD_REMOVE_BP,   /* z type,addr,kind */
	RSP_CMD_DETACH,	     /* D [;pid] */
	RSP_CMD_KILL,	     /* k, vKill */
	RSP_CMD_QSUPPORTED,  /* qSupported[:...] */
	RSP_CMD_QXFER_FEATURES, /* qXfer:features:read:annex:offset,length */
	RSP_CMD_QATTACHED,   /* qAttached */
	RSP_CMD_QC,	     /* qC */
	RSP_CMD_QFTHREADINFO, /* qfThreadInfo */
	RSP_CMD_QSTHREADINFO, /* qsThreadInfo */
	RSP_CMD_QTHREAD_EXTRA, /* qThreadExtraInfo,tid */
	RSP_CMD_START_NOACK, /* QStartNoAckMode */
};

enum rsp_bp_type { RSP_BP_SW = 0, RSP_BP_HW = 1, RSP_WP_WRITE = 2, RSP_WP_READ = 3,
		   RSP_WP_ACCESS = 4 };

#define RSP_MAX_VCONT 8

struct rsp_vcont_action {
	char action;	/* 'c' or 's' (C and S: their signal is ignored; 't' and 'r' refused) */
	int64_t thread; /* -1: every thread without an action of its own */
};

struct rsp_cmd {
	enum rsp_cmd_kind kind;
	uint64_t addr;	 /* m M X Z z: address; p P: register number; c s: resume address */
	uint64_t len;	 /* m M X: bytes; Z z: kind (instruction or watched length) */
	bool has_addr;	 /* c s: an address was given */
	int bp_type;	 /* Z z */
	char op;	 /* H: 'g' or 'c' */
	int64_t thread;	 /* H T qThreadExtraInfo: thread id (-1 all, 0 any) */
	const uint8_t *data; /* G P M X: decoded bytes, in the caller's scratch buffer */
	size_t data_len;
	char annex[32];	     /* qXfer: the document's name */
	struct rsp_vcont_action vcont[RSP_MAX_VCONT];
	int nr_vcont;
};

/* Parses one packet's payload (pkt[0..len)) into `cmd`. Data that G, P, M or X carry is decoded
 * into scratch[scratch_cap] (cmd->data points into it). Returns 0 (possibly RSP_CMD_UNKNOWN:
 * the stub answers "" for what it does not serve), or -EINVAL for a malformed command of a known
 * kind (the stub answers E01 or similar). Never reads past len. */
int rsp_parse_command(const uint8_t *pkt, size_t len, struct rsp_cmd *cmd, uint8_t *scratch,
		      size_t scratch_cap);

/* A thread id as gdb writes it: hex, or -1. */
int rsp_parse_thread(const char **p, const char *end, int64_t *out);

#endif
