/* Live migration's wire format and its sockets: what one skiff sends another to move a running
 * VM (vmm/migration.h runs the exchange). Arch-neutral: a VM's memory is a flat range of bytes
 * (its regions one after the other, as in a snapshot's memory file) and its machine state a
 * snapshot state image (vmm/snapshot.h), whatever the architecture.
 *
 * The stream is frames, each a header and a payload:
 *
 *   char magic[4]      "SKMG"
 *   u16  protocol      MIGRATION_PROTOCOL (2); another is refused
 *   u16  arch          1 x86_64, 2 arm64; another architecture's is refused
 *   u32  type          enum migration_frame_type
 *   u32  length        payload bytes that follow, at most MIGRATION_MAX_FRAME
 *   u32  payload_crc   zlib's CRC-32 of the payload; of a PAGES frame, of its count and offsets
 *                      only (its first 8 + 8 * count bytes), not of the pages
 *   u32  header_crc    CRC-32 of the 20 bytes before it
 *
 * little-endian. The exchange (source S, destination D):
 *
 *   S: HELLO     u32 page size, char skiff_version[32]
 *   S: CONFIG    the VM's description (snapshot_save_description's section)
 *   D: ACCEPT    (empty) or ERROR: D can build that VM and holds its memory
 *   S: PAGES...  u32 count (1..MIGRATION_MAX_PAGES), u32 0, u64 offset[count] (page-aligned,
 *                inside the memory), then count pages of 4 KiB
 *   S: STATE     the snapshot state image, taken with the VM paused
 *   D: READY     (empty) or ERROR: the VM is built with that state and has not run
 *   S: GO        u8 resume (1: run; 0: the source was paused, stay paused)
 *
 * after GO the source ends and the destination runs the VM; before it, either side ends the
 * exchange with ERROR (a one-line reason) or by closing, and then the VM runs on at the source.
 * Nothing read is trusted: every frame is checked (magic, protocol, arch, both CRCs, length,
 * type, and each PAGES offset) before it is used. */
#ifndef SKIFF_MIGRATION_STREAM_H
#define SKIFF_MIGRATION_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

/* 2: a PAGES frame's CRC covers its count and offsets, not its pages (1 covered them all). */
#define MIGRATION_PROTOCOL     2
#define MIGRATION_FRAME_HEADER 24
#define MIGRATION_PAGE_SIZE    4096
#define MIGRATION_MAX_PAGES    256 /* per PAGES frame: 1 MiB of memory */
/* A state image is at most 64 MiB (vmm/snapshot.c); a PAGES frame is far below. */
#define MIGRATION_MAX_FRAME    ((64u << 20) + 4096)
#define MIGRATION_HELLO_LEN    36
/* The parts of one frame migration_send takes: a PAGES frame's head and a run of pages each. */
#define MIGRATION_MAX_PARTS    (MIGRATION_MAX_PAGES + 1)

enum migration_frame_type {
	MIGRATION_HELLO = 1,
	MIGRATION_CONFIG,
	MIGRATION_ACCEPT,
	MIGRATION_PAGES,
	MIGRATION_STATE,
	MIGRATION_READY,
	MIGRATION_GO,
	MIGRATION_ERROR,
	MIGRATION_FRAME_TYPES
};

const char *migration_frame_name(uint32_t type);

/* "unix:/path" or "tcp:HOST:PORT" (HOST an IPv4 address, [IPv6] or localhost). */
struct migration_url {
	bool tcp;
	char path[108]; /* sun_path */
	char host[64];
	uint16_t port;
};

/* 0, or -EINVAL with the reason as the thread's last error. */
int migration_url_parse(const char *url, struct migration_url *out);

/* One connection. Every wait is bounded: timeout_ms without progress fails with -ETIMEDOUT,
 * and *cancel (when not NULL) becoming true fails it with -ECANCELED within 100 ms. */
struct migration_stream {
	int fd;
	int timeout_ms;
	const bool *cancel;
	uint64_t bytes_sent;
	uint64_t bytes_received;
};

/* The sockets: a listener (the unix path is replaced if a socket is there), one accepted
 * connection, an outgoing one. Each returns a non-blocking fd, or -errno with the reason as the
 * thread's last error. */
int migration_listen(const struct migration_url *url);
int migration_accept(int listen_fd, int timeout_ms, const bool *cancel);
int migration_connect(const struct migration_url *url, int timeout_ms, const bool *cancel);

/* Sends one frame whose payload is the parts one after the other. 0, or -errno with the reason
 * as the thread's last error. */
int migration_send(struct migration_stream *s, uint32_t type, const struct iovec *parts, int nr);
/* Sends ERROR with the reason (best effort: a peer gone is not an error here). */
void migration_send_error(struct migration_stream *s, const char *reason);

/* A frame received and checked; payload malloc'd (NULL when empty). */
struct migration_frame {
	uint32_t type;
	uint32_t length;
	uint8_t *payload;
};

/* The header's checks, alone (for the unit tests and migration_recv): 0, or -EPROTO /
 * -EPROTONOSUPPORT / -EBADMSG with the reason as the thread's last error. On success *type and
 * *length are the header's. */
int migration_check_header(const uint8_t header[MIGRATION_FRAME_HEADER], uint32_t *type,
			   uint32_t *length);
/* Builds a header (for migration_send and the unit tests). */
void migration_make_header(uint8_t header[MIGRATION_FRAME_HEADER], uint32_t type,
			   const struct iovec *parts, int nr);

/* Receives the next frame. An ERROR frame from the peer is returned as -ECONNREFUSED with the
 * peer's reason (made printable) as the thread's last error; a closed connection is -EPIPE.
 * 0, or -errno with the reason as the thread's last error. */
int migration_recv(struct migration_stream *s, struct migration_frame *f);
void migration_frame_free(struct migration_frame *f);
/* The same, except that a PAGES frame's pages go into memfd (guest memory, mem_bytes long) at
 * their offsets, read through scratch (MIGRATION_MAX_PAGES pages), once its count, length,
 * CRC and every offset are checked; *pages says how many (0 for any other frame, which comes
 * back in f as from migration_recv; a PAGES frame's f has no payload). A failure in the middle
 * of the pages leaves none or some of them written. */
int migration_recv_into(struct migration_stream *s, struct migration_frame *f, int memfd,
			uint64_t mem_bytes, uint8_t *scratch, uint32_t *pages);

/* A PAGES payload checked against a memory of mem_bytes: *count pages, their offsets (read with
 * migration_page_offset) and their bytes. 0, or -EBADMSG with the reason as the thread's last
 * error. */
int migration_pages_check(const uint8_t *payload, size_t len, uint64_t mem_bytes,
			  uint32_t *count, const uint8_t **offsets, const uint8_t **data);
uint64_t migration_page_offset(const uint8_t *offsets, uint32_t i);

/* Little-endian helpers for the payloads. */
void migration_put_le(uint8_t *p, uint64_t v, int bytes);
uint64_t migration_get_le(const uint8_t *p, int bytes);

#endif
