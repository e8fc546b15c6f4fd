#include "vmm/migration_stream.h"
#include "arch/arch.h"
#include "base/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <zlib.h>

#define MAGIC "SKMG"

const char *migration_frame_name(uint32_t type)
{
	static const char *const names[] = {"?",     "HELLO", "CONFIG", "ACCEPT", "PAGES",
					    "STATE", "READY", "GO",	"ERROR"};

	return type < MIGRATION_FRAME_TYPES ? names[type] : "unknown";
}

void migration_put_le(uint8_t *p, uint64_t v, int bytes)
{
	for (int i = 0; i < bytes; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

uint64_t migration_get_le(const uint8_t *p, int bytes)
{
	uint64_t v = 0;

	for (int i = 0; i < bytes; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

int migration_url_parse(const char *url, struct migration_url *out)
{
	const char *hp, *colon;
	char *end;
	unsigned long port;

	memset(out, 0, sizeof(*out));
	if (!strncmp(url, "unix:", 5)) {
		if (!url[5])
			return log_set_error(-EINVAL, "%s: a unix: URL needs a path", url);
		if (strlen(url + 5) >= sizeof(out->path))
			return log_set_error(-EINVAL, "%s: the socket path is longer than %zu "
						      "bytes",
					     url, sizeof(out->path) - 1);
		snprintf(out->path, sizeof(out->path), "%s", url + 5);
		return 0;
	}
	if (strncmp(url, "tcp:", 4))
		return log_set_error(-EINVAL, "%s: not a migration URL (unix:/path or "
					      "tcp:HOST:PORT)",
				     url);
	out->tcp = true;
	hp = url + 4;
	colon = strrchr(hp, ':');
	if (!colon || colon == hp)
		return log_set_error(-EINVAL, "%s: tcp: needs HOST:PORT", url);
	if ((size_t)(colon - hp) >= sizeof(out->host))
		return log_set_error(-EINVAL, "%s: the host is too long", url);
	memcpy(out->host, hp, (size_t)(colon - hp));
	if (out->host[0] == '[') { /* [IPv6] */
		size_t n = strlen(out->host);

		if (n < 3 || out->host[n - 1] != ']')
			return log_set_error(-EINVAL, "%s: an IPv6 host is [ADDRESS]", url);
		memmove(out->host, out->host + 1, n - 2);
		out->host[n - 2] = '\0';
	}
	errno = 0;
	port = strtoul(colon + 1, &end, 10);
	if (!colon[1] || *end || errno || port == 0 || port > 65535)
		return log_set_error(-EINVAL, "%s: the port must be 1 to 65535", url);
	out->port = (uint16_t)port;
	if (!strcmp(out->host, "localhost"))
		snprintf(out->host, sizeof(out->host), "127.0.0.1");
	{
		struct in6_addr a6;
		struct in_addr a4;

		if (inet_pton(AF_INET, out->host, &a4) != 1 &&
		    inet_pton(AF_INET6, out->host, &a6) != 1)
			return log_set_error(-EINVAL, "%s: the host must be an IP address (or "
						      "localhost)",
					     url);
	}
	return 0;
}

/* The URL as a socket address. */
static socklen_t sockaddr_of(const struct migration_url *url, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (!url->tcp) {
		struct sockaddr_un *un = (struct sockaddr_un *)ss;

		un->sun_family = AF_UNIX;
		memcpy(un->sun_path, url->path, strlen(url->path));
		return sizeof(*un);
	}
	if (strchr(url->host, ':')) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(url->port);
		inet_pton(AF_INET6, url->host, &in6->sin6_addr);
		return sizeof(*in6);
	}
	struct sockaddr_in *in = (struct sockaddr_in *)ss;

	in->sin_family = AF_INET;
	in->sin_port = htons(url->port);
	inet_pton(AF_INET, url->host, &in->sin_addr);
	return sizeof(*in);
}

static const char *url_name(const struct migration_url *url, char *buf, size_t len)
{
	if (url->tcp)
		snprintf(buf, len, "tcp:%s:%u", url->host, url->port);
	else
		snprintf(buf, len, "unix:%s", url->path);
	return buf;
}

int migration_listen(const struct migration_url *url)
{
	struct sockaddr_storage ss;
	socklen_t sl = sockaddr_of(url, &ss);
	char name[200];
	int fd, one = 1;

	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return log_set_error(-errno, "%s: socket: %s", url_name(url, name, sizeof(name)),
				     strerror(errno));
	if (url->tcp) {
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	} else {
		struct stat st;

		/* A socket left by an earlier run is replaced; any other file is not. */
		if (lstat(url->path, &st) == 0 && S_ISSOCK(st.st_mode))
			unlink(url->path);
	}
	if (bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, 1) < 0) {
		int err = errno;

		close(fd);
		return log_set_error(-err, "%s: %s", url_name(url, name, sizeof(name)),
				     strerror(err));
	}
	return fd;
}

/* Waits until fd is ready for `events`: 0, -ETIMEDOUT or -ECANCELED (reason set). */
static int wait_fd(int fd, short events, int timeout_ms, const bool *cancel, const char *what)
{
	int waited = 0;

	for (;;) {
		struct pollfd p = {.fd = fd, .events = events};
		int slice = timeout_ms - waited < 100 ? timeout_ms - waited : 100;
		int n;

		if (cancel && __atomic_load_n(cancel, __ATOMIC_ACQUIRE))
			return log_set_error(-ECANCELED, "migration: cancelled while %s", what);
		if (slice <= 0)
			return log_set_error(-ETIMEDOUT, "migration: no progress for %d ms while %s",
					     timeout_ms, what);
		n = poll(&p, 1, slice);
		if (n < 0 && errno != EINTR)
			return log_set_error(-errno, "migration: poll: %s", strerror(errno));
		if (n > 0)
			return 0;
		waited += slice;
	}
}

int migration_accept(int listen_fd, int timeout_ms, const bool *cancel)
{
	int ret = wait_fd(listen_fd, POLLIN, timeout_ms, cancel, "waiting for the source");
	int fd;

	if (ret)
		return ret;
	fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0)
		return log_set_error(-errno, "migration: accept: %s", strerror(errno));
	return fd;
}

int migration_connect(const struct migration_url *url, int timeout_ms, const bool *cancel)
{
	struct sockaddr_storage ss;
	socklen_t sl = sockaddr_of(url, &ss);
	char name[200];
	int fd, err = 0, one = 1;
	socklen_t el = sizeof(err);

	url_name(url, name, sizeof(name));
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return log_set_error(-errno, "%s: socket: %s", name, strerror(errno));
	if (url->tcp)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&ss, sl) < 0) {
		int ret;

		if (errno != EINPROGRESS && errno != EAGAIN) {
			err = errno;
			close(fd);
			return log_set_error(-err, "%s: %s", name, strerror(err));
		}
		ret = wait_fd(fd, POLLOUT, timeout_ms, cancel, "connecting");
		if (ret) {
			close(fd);
			return ret;
		}
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
			err = errno;
		if (err) {
			close(fd);
			return log_set_error(-err, "%s: %s", name, strerror(err));
		}
	}
	return fd;
}

/* The bytes of a payload its CRC covers: all of it, but for a PAGES frame only its count and
 * offsets (8 + 8 * count bytes; the count is the payload's first u32), not the pages. */
static uint64_t crc_covered(uint32_t type, uint64_t len, uint32_t count)
{
	uint64_t head = 8 + 8 * (uint64_t)count;

	return type == MIGRATION_PAGES && len > head ? head : len;
}

/* The first u32 of a payload split in parts (0 when it is shorter). */
static uint32_t first_u32(const struct iovec *parts, int nr)
{
	uint8_t b[4] = {0};
	size_t got = 0;

	for (int i = 0; i < nr && got < 4; i++)
		for (size_t j = 0; j < parts[i].iov_len && got < 4; j++)
			b[got++] = ((const uint8_t *)parts[i].iov_base)[j];
	return got == 4 ? (uint32_t)migration_get_le(b, 4) : 0;
}

void migration_make_header(uint8_t h[MIGRATION_FRAME_HEADER], uint32_t type,
			   const struct iovec *parts, int nr)
{
	uLong crc = crc32(0, NULL, 0);
	uint64_t len = 0, covered;

	for (int i = 0; i < nr; i++)
		len += parts[i].iov_len;
	covered = crc_covered(type, len, first_u32(parts, nr));
	for (int i = 0; i < nr && covered; i++) {
		size_t n = parts[i].iov_len < covered ? parts[i].iov_len : (size_t)covered;

		crc = crc32(crc, parts[i].iov_base, (uInt)n);
		covered -= n;
	}
	memcpy(h, MAGIC, 4);
	migration_put_le(h + 4, MIGRATION_PROTOCOL, 2);
	migration_put_le(h + 6, arch_id(), 2);
	migration_put_le(h + 8, type, 4);
	migration_put_le(h + 12, len, 4);
	migration_put_le(h + 16, crc, 4);
	migration_put_le(h + 20, crc32(crc32(0, NULL, 0), h, 20), 4);
}

int migration_send(struct migration_stream *s, uint32_t type, const struct iovec *parts, int nr)
{
	uint8_t header[MIGRATION_FRAME_HEADER];
	struct iovec iov[MIGRATION_MAX_PARTS + 1];
	int n = 1, at = 0;
	uint64_t total = 0;

	if (nr > MIGRATION_MAX_PARTS)
		return log_set_error(-EINVAL, "migration: a frame of %d parts", nr);
	for (int i = 0; i < nr; i++)
		total += parts[i].iov_len;
	if (total > MIGRATION_MAX_FRAME)
		return log_set_error(-EFBIG, "migration: a %s frame of %llu bytes",
				     migration_frame_name(type), (unsigned long long)total);
	migration_make_header(header, type, parts, nr);
	iov[0] = (struct iovec){header, sizeof(header)};
	for (int i = 0; i < nr; i++)
		if (parts[i].iov_len)
			iov[n++] = parts[i];
	while (at < n) {
		struct msghdr msg = {.msg_iov = iov + at, .msg_iovlen = (size_t)(n - at)};
		ssize_t sent = sendmsg(s->fd, &msg, MSG_NOSIGNAL);

		if (sent < 0 && errno == EINTR)
			continue;
		if (sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			int ret = wait_fd(s->fd, POLLOUT, s->timeout_ms, s->cancel, "sending");

			if (ret)
				return ret;
			continue;
		}
		if (sent < 0)
			return log_set_error(errno == EPIPE || errno == ECONNRESET ? -EPIPE : -errno,
					     "migration: the other side is gone (%s)",
					     strerror(errno));
		s->bytes_sent += (uint64_t)sent;
		while (at < n && (size_t)sent >= iov[at].iov_len)
			sent -= (ssize_t)iov[at++].iov_len;
		if (at < n) {
			iov[at].iov_base = (uint8_t *)iov[at].iov_base + sent;
			iov[at].iov_len -= (size_t)sent;
		}
	}
	return 0;
}

void migration_send_error(struct migration_stream *s, const char *reason)
{
	struct iovec part = {(void *)reason, strlen(reason) > 1024 ? 1024 : strlen(reason)};
	int timeout = s->timeout_ms;

	s->timeout_ms = timeout < 1000 ? timeout : 1000;
	migration_send(s, MIGRATION_ERROR, &part, 1);
	s->timeout_ms = timeout;
}

static int recv_all(struct migration_stream *s, void *buf, size_t len, bool first)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t n = read(s->fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			int ret = wait_fd(s->fd, POLLIN, s->timeout_ms, s->cancel, "receiving");

			if (ret)
				return ret;
			continue;
		}
		if (n == 0)
			return log_set_error(-EPIPE, "migration: the other side closed the "
						     "connection%s",
					     first ? "" : " in the middle of a frame");
		if (n < 0)
			return log_set_error(-errno, "migration: the other side is gone (%s)",
					     strerror(errno));
		p += n;
		len -= (size_t)n;
		first = false;
		s->bytes_received += (uint64_t)n;
	}
	return 0;
}

int migration_check_header(const uint8_t h[MIGRATION_FRAME_HEADER], uint32_t *type,
			   uint32_t *length)
{
	uint32_t protocol = (uint32_t)migration_get_le(h + 4, 2);
	uint32_t arch = (uint32_t)migration_get_le(h + 6, 2);

	if (memcmp(h, MAGIC, 4))
		return log_set_error(-EPROTO, "migration: not a skiff migration stream");
	if (migration_get_le(h + 20, 4) != crc32(crc32(0, NULL, 0), h, 20))
		return log_set_error(-EBADMSG, "migration: a frame header is corrupted (its CRC-32 "
					       "does not match)");
	if (protocol != MIGRATION_PROTOCOL)
		return log_set_error(-EPROTONOSUPPORT, "migration: the source speaks migration "
						       "protocol %u; this skiff speaks %d",
				     protocol, MIGRATION_PROTOCOL);
	if (arch != arch_id())
		return log_set_error(-EPROTO, "migration: a stream from an %s VM; this skiff runs "
					      "%s VMs",
				     arch_id_name(arch), arch_id_name(arch_id()));
	*type = (uint32_t)migration_get_le(h + 8, 4);
	*length = (uint32_t)migration_get_le(h + 12, 4);
	if (*type == 0 || *type >= MIGRATION_FRAME_TYPES)
		return log_set_error(-EBADMSG, "migration: a frame of unknown type %u", *type);
	if (*length > MIGRATION_MAX_FRAME)
		return log_set_error(-EBADMSG, "migration: a %s frame of %u bytes (at most %u)",
				     migration_frame_name(*type), *length, MIGRATION_MAX_FRAME);
	return 0;
}

/* A received ERROR frame as -ECONNREFUSED with its reason, made printable; it is freed. */
static int refused(struct migration_frame *f)
{
	char why[256];
	size_t n = f->length < sizeof(why) - 1 ? f->length : sizeof(why) - 1;

	if (n) /* an empty ERROR has no payload to copy from */
		memcpy(why, f->payload, n);
	why[n] = '\0';
	if (!why[0])
		snprintf(why, sizeof(why), "(no reason given)");
	for (char *c = why; *c; c++)
		if (*c < 0x20 || *c > 0x7e)
			*c = '?';
	migration_frame_free(f);
	return log_set_error(-ECONNREFUSED, "the other side refused: %s", why);
}

static int corrupted(uint32_t type)
{
	return log_set_error(-EBADMSG, "migration: a %s frame is corrupted (its CRC-32 does not "
				       "match)",
			     migration_frame_name(type));
}

/* The rest of a frame whose header h was read: its payload into f. */
static int recv_payload(struct migration_stream *s, const uint8_t h[MIGRATION_FRAME_HEADER],
			struct migration_frame *f)
{
	uint64_t covered;
	int ret;

	if (f->length) {
		f->payload = malloc(f->length);
		if (!f->payload)
			return log_set_error(-ENOMEM, "migration: out of memory for a %u-byte frame",
					     f->length);
		ret = recv_all(s, f->payload, f->length, false);
		if (ret) {
			migration_frame_free(f);
			return ret;
		}
	}
	covered = crc_covered(f->type, f->length,
			      f->length >= 4 ? (uint32_t)migration_get_le(f->payload, 4) : 0);
	if (migration_get_le(h + 16, 4) != crc32(crc32(0, NULL, 0), f->payload, (uInt)covered)) {
		migration_frame_free(f);
		return corrupted(f->type);
	}
	if (f->type == MIGRATION_ERROR)
		return refused(f);
	return 0;
}

/* A frame's header, read and checked; f has its type and length. */
static int recv_header(struct migration_stream *s, uint8_t h[MIGRATION_FRAME_HEADER],
		       struct migration_frame *f)
{
	int ret;

	memset(f, 0, sizeof(*f));
	ret = recv_all(s, h, MIGRATION_FRAME_HEADER, true);
	if (!ret)
		ret = migration_check_header(h, &f->type, &f->length);
	return ret;
}

int migration_recv(struct migration_stream *s, struct migration_frame *f)
{
	uint8_t h[MIGRATION_FRAME_HEADER];
	int ret = recv_header(s, h, f);

	return ret ? ret : recv_payload(s, h, f);
}

/* A PAGES frame's count and the length it makes: 0, or -EBADMSG with the reason. */
static int pages_count_check(const uint8_t *head, size_t len, uint32_t *count)
{
	uint32_t n;

	if (len < 8)
		return log_set_error(-EBADMSG, "migration: a PAGES frame of %zu bytes", len);
	n = (uint32_t)migration_get_le(head, 4);
	if (n == 0 || n > MIGRATION_MAX_PAGES || migration_get_le(head + 4, 4) != 0)
		return log_set_error(-EBADMSG, "migration: a PAGES frame of %u pages (1 to %d)", n,
				     MIGRATION_MAX_PAGES);
	if (len != 8 + (size_t)n * (8 + MIGRATION_PAGE_SIZE))
		return log_set_error(-EBADMSG, "migration: a PAGES frame of %u pages is %zu "
					       "bytes long",
				     n, len);
	*count = n;
	return 0;
}

/* Every offset of a PAGES frame inside the memory: 0, or -EBADMSG with the reason. */
static int pages_offsets_check(const uint8_t *offsets, uint32_t n, uint64_t mem_bytes)
{
	for (uint32_t i = 0; i < n; i++) {
		uint64_t off = migration_get_le(offsets + 8 * (size_t)i, 8);

		if (off % MIGRATION_PAGE_SIZE || off >= mem_bytes ||
		    mem_bytes - off < MIGRATION_PAGE_SIZE)
			return log_set_error(-EBADMSG, "migration: a page at 0x%llx, outside the "
						       "%llu bytes of guest memory",
					     (unsigned long long)off,
					     (unsigned long long)mem_bytes);
	}
	return 0;
}

int migration_recv_into(struct migration_stream *s, struct migration_frame *f, int memfd,
			uint64_t mem_bytes, uint8_t *scratch, uint32_t *pages)
{
	uint8_t h[MIGRATION_FRAME_HEADER], head[8 + 8 * MIGRATION_MAX_PAGES];
	uint32_t n = 0;
	int ret;

	*pages = 0;
	ret = recv_header(s, h, f);
	if (ret)
		return ret;
	if (f->type != MIGRATION_PAGES)
		return recv_payload(s, h, f);
	/* The count first: it says how long the offsets are; then the offsets, checked (CRC and
	 * place) before a byte of the pages lands in the memory. */
	if (f->length < 8)
		return pages_count_check(head, f->length, &n);
	ret = recv_all(s, head, 8, false);
	if (!ret)
		ret = pages_count_check(head, f->length, &n);
	if (!ret)
		ret = recv_all(s, head + 8, 8 * (size_t)n, false);
	if (ret)
		return ret;
	if (migration_get_le(h + 16, 4) != crc32(crc32(0, NULL, 0), head, (uInt)(8 + 8 * n)))
		return corrupted(f->type);
	ret = pages_offsets_check(head + 8, n, mem_bytes);
	if (ret)
		return ret;
	ret = recv_all(s, scratch, (size_t)n * MIGRATION_PAGE_SIZE, false);
	/* Into the file at their offsets; pages one after the other there are one write. (A
	 * write, not a copy into a mapping of it: that faults in and clears each page first,
	 * which costs more than the copy.) */
	for (uint32_t i = 0, run; !ret && i < n; i += run) {
		uint64_t at = migration_page_offset(head + 8, i);
		size_t len;

		for (run = 1; i + run < n && migration_page_offset(head + 8, i + run) ==
						  at + (uint64_t)run * MIGRATION_PAGE_SIZE;
		     run++)
			;
		len = (size_t)run * MIGRATION_PAGE_SIZE;
		errno = 0;
		if (pwrite(memfd, scratch + (size_t)i * MIGRATION_PAGE_SIZE, len, (off_t)at) !=
		    (ssize_t)len)
			ret = log_set_error(-EIO, "migration: writing guest memory: %s",
					    errno ? strerror(errno) : "a short write");
	}
	if (!ret)
		*pages = n;
	return ret;
}

void migration_frame_free(struct migration_frame *f)
{
	free(f->payload);
	f->payload = NULL;
	f->length = 0;
}

int migration_pages_check(const uint8_t *payload, size_t len, uint64_t mem_bytes,
			  uint32_t *count, const uint8_t **offsets, const uint8_t **data)
{
	uint32_t n;
	int ret = pages_count_check(payload, len, &n);

	if (!ret)
		ret = pages_offsets_check(payload + 8, n, mem_bytes);
	if (ret)
		return ret;
	*count = n;
	*offsets = payload + 8;
	*data = payload + 8 + 8 * (size_t)n;
	return 0;
}

uint64_t migration_page_offset(const uint8_t *offsets, uint32_t i)
{
	return migration_get_le(offsets + 8 * (size_t)i, 8);
}
