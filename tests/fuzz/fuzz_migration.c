/* What a live migration's destination reads from its source (src/vmm/migration_stream.c and the
 * parsing behind it): the bytes of a connection through migration_recv_into() frame by frame,
 * each frame through what the destination does with it before any VM is built: a PAGES frame
 * written into 1 MiB of guest memory (a memfd, whose size must not grow: a page written outside
 * it would), a
 * CONFIG frame's description (snapshot_read_description), a STATE frame's state image
 * (snapshot_parse: header, CRC, description). The bytes come from a memfd: reads never block,
 * its end is the connection's end.
 *
 * Input: a first byte, then either (its bit 0 set) the raw stream, or records the harness frames
 * with the right CRCs so that the fuzzer gets past them to the payloads: u8 type, u16 length
 * (little-endian), the payload; a STATE payload that begins with a state image's magic gets its
 * length and CRC fields made right too. */
#include "base/log.h"
#include "config/vm_config.h"
#include "vmm/migration_stream.h"
#include "vmm/snapshot.h"

#include <stdlib.h>
#include <zlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define MEM (1u << 20)
#define IMAGE_HEADER 64 /* vmm/snapshot.h: magic 8, format 4, arch 4, version 32, length 8, CRC 4, 4 */

static void put_le(uint8_t *p, uint64_t v, int bytes)
{
	for (int i = 0; i < bytes; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* The records as frames with good CRCs, into fd. */
static void write_framed(int fd, const uint8_t *data, size_t size)
{
	static uint8_t payload[1 << 16];

	while (size >= 3) {
		uint32_t type = data[0];
		size_t len = (size_t)data[1] | (size_t)data[2] << 8;
		uint8_t header[MIGRATION_FRAME_HEADER];
		struct iovec part;

		data += 3;
		size -= 3;
		if (len > size)
			len = size;
		memcpy(payload, data, len);
		if (type == MIGRATION_STATE && len >= IMAGE_HEADER && !memcmp(payload, "SKIFFSNP", 8)) {
			put_le(payload + 48, len - IMAGE_HEADER, 8);
			put_le(payload + 56,
			       crc32(crc32(0, NULL, 0), payload + IMAGE_HEADER,
				     (uInt)(len - IMAGE_HEADER)),
			       4);
		}
		part = (struct iovec){payload, len};
		migration_make_header(header, type, &part, 1);
		if (write(fd, header, sizeof(header)) != (ssize_t)sizeof(header) ||
		    (len && write(fd, payload, len) != (ssize_t)len))
			return;
		data += len;
		size -= len;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct vm_config cfg;
	static uint8_t scratch[MIGRATION_MAX_PAGES * MIGRATION_PAGE_SIZE];
	static int memfd = -1;
	uint32_t count;
	struct stat st;
	struct migration_stream s = {.timeout_ms = 100};
	struct migration_frame f;
	int fd = memfd_create("fuzz-migration", MFD_CLOEXEC);

	if (fd < 0 || size < 1) {
		if (fd >= 0)
			close(fd);
		return 0;
	}
	if (data[0] & 1) {
		if (write(fd, data + 1, size - 1) != (ssize_t)(size - 1)) {
			close(fd);
			return 0;
		}
	} else {
		write_framed(fd, data + 1, size - 1);
	}
	if (lseek(fd, 0, SEEK_SET)) {
		close(fd);
		return 0;
	}
	s.fd = fd;
	if (memfd < 0) {
		memfd = memfd_create("fuzz-guest-memory", MFD_CLOEXEC);
		if (memfd < 0 || ftruncate(memfd, MEM) < 0)
			__builtin_trap();
	}
	while (migration_recv_into(&s, &f, memfd, MEM, scratch, &count) == 0) {
		struct snapshot snap;
		uint8_t *copy;

		if (f.length > MIGRATION_MAX_FRAME ||
		    (f.type != MIGRATION_PAGES && f.length && !f.payload))
			__builtin_trap();
		switch (f.type) {
		case MIGRATION_PAGES:
			if (count == 0 || count > MIGRATION_MAX_PAGES || f.payload ||
			    fstat(memfd, &st) || st.st_size != MEM)
				__builtin_trap(); /* a page written outside the memory */
			break;
		case MIGRATION_CONFIG:
			(void)snapshot_read_description(f.payload, f.length, "fuzz", &cfg);
			break;
		case MIGRATION_STATE:
			copy = malloc(f.length ? f.length : 1);
			if (!copy)
				break;
			if (f.length)
				memcpy(copy, f.payload, f.length);
			if (snapshot_parse(&snap, copy, f.length, "fuzz", &cfg) == 0)
				snapshot_close(&snap);
			break;
		default:
			break;
		}
		migration_frame_free(&f);
	}
	close(fd);
	return 0;
}
