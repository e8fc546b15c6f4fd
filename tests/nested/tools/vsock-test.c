/* vsock-test: both ends of the nested vsock scenario (busybox has no AF_VSOCK). Built static per
 * architecture by tests/nested/run; /bin/vsock-test in the guest, /vmm/vsock-test in L1.
 *
 * In the guest (AF_VSOCK):
 *   listen PORT               echo one connection back until its EOF; "served N" at the end
 *   connect CID PORT MSG      send MSG, shut down writing, print what comes back as "reply=..."
 *   refused CID PORT          the connection must fail: prints "refused: <errno text>"
 *   send CID PORT KIB         stream KIB KiB to CID:PORT, print MB/s (bench/vsock)
 *   sink PORT                 accept one connection, count bytes to EOF, print MB/s (also in
 *                             L1 for QEMU's vhost-vsock, bench/vsock)
 * In L1 (unix sockets, Firecracker's hybrid vsock):
 *   uds-echo UDS PORT BYTES   "CONNECT PORT", expect "OK <n>", send BYTES of a pattern while
 *                             reading the echo back; checks every byte
 *   uds-refused UDS PORT      "CONNECT PORT" to a port nobody listens on: the connection must
 *                             end without "OK"
 *   uds-serve PATH            accept one connection on PATH, read to EOF, answer
 *                             "pong: <what came>", close
 *   uds-sink PATH             accept one connection on PATH, count bytes to EOF, print them
 *   uds-send UDS PORT KIB     "CONNECT PORT", then stream KIB KiB, print MB/s (bench/vsock)
 * Exit status 0 on success; a failure prints one line and exits 1. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <linux/vm_sockets.h>

static void die(const char *what)
{
	printf("vsock-test: FAILED: %s: %s\n", what, errno ? strerror(errno) : "");
	fflush(stdout);
	exit(1);
}

static unsigned char pattern_byte(size_t i)
{
	return (unsigned char)((i * 131u + (i >> 12) * 7u) & 0xff);
}

static int vsock_connect(const char *cid, const char *port)
{
	struct sockaddr_vm a = {.svm_family = AF_VSOCK,
				.svm_cid = (unsigned)strtoul(cid, NULL, 10),
				.svm_port = (unsigned)strtoul(port, NULL, 10)};
	int fd = socket(AF_VSOCK, SOCK_STREAM, 0);

	if (fd < 0)
		die("socket(AF_VSOCK)");
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

static int unix_connect(const char *path)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0)
		die(path);
	return fd;
}

static int unix_accept_one(const char *path)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM, 0), c;

	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	unlink(path);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(fd, 4) != 0)
		die(path);
	printf("listening on %s\n", path);
	fflush(stdout);
	c = accept(fd, NULL, NULL);
	if (c < 0)
		die("accept");
	close(fd);
	return c;
}

static void write_all(int fd, const void *buf, size_t len)
{
	while (len) {
		ssize_t n = write(fd, buf, len);

		if (n <= 0)
			die("write");
		buf = (const char *)buf + n;
		len -= (size_t)n;
	}
}

/* "CONNECT PORT\n", then the first line back. */
static int hybrid_connect(const char *uds, const char *port, char *line, size_t size)
{
	int fd = unix_connect(uds);
	char cmd[64];
	size_t n = 0;

	snprintf(cmd, sizeof(cmd), "CONNECT %s\n", port);
	write_all(fd, cmd, strlen(cmd));
	while (n < size - 1) {
		ssize_t r = read(fd, line + n, 1);

		if (r <= 0)
			break;
		if (line[n] == '\n')
			break;
		n++;
	}
	line[n] = 0;
	return fd;
}

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int cmd_listen(const char *port)
{
	struct sockaddr_vm a = {.svm_family = AF_VSOCK,
				.svm_cid = VMADDR_CID_ANY,
				.svm_port = (unsigned)strtoul(port, NULL, 10)};
	int fd = socket(AF_VSOCK, SOCK_STREAM, 0), c;
	char buf[16384];
	size_t total = 0;
	ssize_t n;

	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(fd, 4) != 0)
		die("listen");
	printf("listening on port %s\n", port);
	fflush(stdout);
	c = accept(fd, NULL, NULL);
	if (c < 0)
		die("accept");
	while ((n = read(c, buf, sizeof(buf))) > 0) {
		write_all(c, buf, (size_t)n);
		total += (size_t)n;
	}
	if (n < 0)
		die("read");
	close(c);
	printf("served %zu\n", total);
	return 0;
}

static int cmd_connect(const char *cid, const char *port, const char *msg)
{
	int fd = vsock_connect(cid, port);
	char buf[256];
	size_t got = 0;
	ssize_t n;

	if (fd < 0)
		die("connect");
	write_all(fd, msg, strlen(msg));
	shutdown(fd, SHUT_WR);
	while (got < sizeof(buf) - 1 && (n = read(fd, buf + got, sizeof(buf) - 1 - got)) > 0)
		got += (size_t)n;
	buf[got] = 0;
	printf("reply=%s\n", buf);
	return 0;
}

static int cmd_refused(const char *cid, const char *port)
{
	int fd = vsock_connect(cid, port);

	if (fd >= 0) {
		errno = 0;
		die("the connection was accepted");
	}
	printf("refused: %s\n", strerror(errno));
	return 0;
}

/* Streams KIB KiB into fd, waits for the peer's close, prints the rate. */
static int stream_out(int fd, const char *kib)
{
	size_t total = strtoull(kib, NULL, 10) * 1024, sent = 0;
	static char buf[65536];
	double t0;

	memset(buf, 'x', sizeof(buf));
	t0 = now();
	while (sent < total) {
		size_t l = total - sent < sizeof(buf) ? total - sent : sizeof(buf);

		write_all(fd, buf, l);
		sent += l;
	}
	shutdown(fd, SHUT_WR);
	while (read(fd, buf, sizeof(buf)) > 0)
		;
	printf("sent %zu bytes in %.3f s: %.1f MB/s\n", sent, now() - t0,
	       (double)sent / (now() - t0) / 1e6);
	return 0;
}

static int cmd_send(const char *cid, const char *port, const char *kib)
{
	int fd = vsock_connect(cid, port);

	if (fd < 0)
		die("connect");
	return stream_out(fd, kib);
}

static int cmd_uds_send(const char *uds, const char *port, const char *kib)
{
	char line[64];
	int fd = hybrid_connect(uds, port, line, sizeof(line));

	if (strncmp(line, "OK ", 3) != 0) {
		printf("vsock-test: FAILED: CONNECT %s answered \"%s\"\n", port, line);
		return 1;
	}
	return stream_out(fd, kib);
}

/* Counts what one connection on `fd` (a listening socket) brings, prints the rate. */
static int sink(int lfd)
{
	static char buf[65536];
	size_t total = 0;
	ssize_t n;
	double t0;
	int c = accept(lfd, NULL, NULL);

	if (c < 0)
		die("accept");
	t0 = now();
	while ((n = read(c, buf, sizeof(buf))) > 0)
		total += (size_t)n;
	close(c);
	printf("received %zu bytes in %.3f s: %.1f MB/s\n", total, now() - t0,
	       (double)total / (now() - t0) / 1e6);
	return 0;
}

static int cmd_sink(const char *port)
{
	struct sockaddr_vm a = {.svm_family = AF_VSOCK,
				.svm_cid = VMADDR_CID_ANY,
				.svm_port = (unsigned)strtoul(port, NULL, 10)};
	int fd = socket(AF_VSOCK, SOCK_STREAM, 0);

	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(fd, 4) != 0)
		die("listen");
	printf("listening on port %s\n", port);
	return sink(fd);
}

/* Writes and reads at once (the echo comes back while we send), then checks every byte. */
static int cmd_uds_echo(const char *uds, const char *port, const char *bytes)
{
	size_t total = strtoull(bytes, NULL, 10), sent = 0, got = 0;
	char line[64], buf[8192];
	int fd = hybrid_connect(uds, port, line, sizeof(line));

	if (strncmp(line, "OK ", 3) != 0) {
		errno = 0;
		printf("vsock-test: FAILED: CONNECT %s answered \"%s\"\n", port, line);
		return 1;
	}
	printf("connected: %s\n", line);
	while (got < total) {
		struct pollfd p = {.fd = fd, .events = POLLIN | (sent < total ? POLLOUT : 0)};

		if (poll(&p, 1, 20000) <= 0) {
			errno = 0;
			die("no progress for 20 s");
		}
		if (p.revents & POLLOUT && sent < total) {
			size_t l = total - sent < sizeof(buf) ? total - sent : sizeof(buf);
			ssize_t n;

			for (size_t i = 0; i < l; i++)
				buf[i] = (char)pattern_byte(sent + i);
			n = write(fd, buf, l);
			if (n <= 0)
				die("write");
			sent += (size_t)n;
			if (sent == total)
				shutdown(fd, SHUT_WR);
		}
		if (p.revents & (POLLIN | POLLHUP)) {
			ssize_t n = read(fd, buf, sizeof(buf));

			if (n <= 0) {
				printf(
				    "vsock-test: FAILED: the echo ended after %zu of %zu bytes\n",
				    got, total);
				return 1;
			}
			for (ssize_t i = 0; i < n; i++)
				if ((unsigned char)buf[i] != pattern_byte(got + (size_t)i)) {
					printf("vsock-test: FAILED: byte %zu differs\n",
					       got + (size_t)i);
					return 1;
				}
			got += (size_t)n;
		}
	}
	printf("echo ok: %zu bytes intact\n", got);
	return 0;
}

static int cmd_uds_refused(const char *uds, const char *port)
{
	char line[64];
	int fd = hybrid_connect(uds, port, line, sizeof(line));

	if (line[0]) {
		printf("vsock-test: FAILED: CONNECT %s answered \"%s\"\n", port, line);
		return 1;
	}
	close(fd);
	printf("refused ok: closed without an answer\n");
	return 0;
}

static int cmd_uds_serve(const char *path)
{
	int c = unix_accept_one(path);
	char buf[256], reply[300];
	size_t got = 0;
	ssize_t n;

	while (got < sizeof(buf) - 1 && (n = read(c, buf + got, sizeof(buf) - 1 - got)) > 0)
		got += (size_t)n;
	buf[got] = 0;
	snprintf(reply, sizeof(reply), "pong: %s", buf);
	write_all(c, reply, strlen(reply));
	close(c);
	printf("served: %s\n", buf);
	return 0;
}

static int cmd_uds_sink(const char *path)
{
	int c = unix_accept_one(path);
	static char buf[65536];
	size_t total = 0;
	ssize_t n;
	double t0 = now();

	while ((n = read(c, buf, sizeof(buf))) > 0)
		total += (size_t)n;
	close(c);
	printf("received %zu bytes in %.3f s\n", total, now() - t0);
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 3 && strcmp(argv[1], "listen") == 0)
		return cmd_listen(argv[2]);
	if (argc == 5 && strcmp(argv[1], "connect") == 0)
		return cmd_connect(argv[2], argv[3], argv[4]);
	if (argc == 4 && strcmp(argv[1], "refused") == 0)
		return cmd_refused(argv[2], argv[3]);
	if (argc == 5 && strcmp(argv[1], "send") == 0)
		return cmd_send(argv[2], argv[3], argv[4]);
	if (argc == 3 && strcmp(argv[1], "sink") == 0)
		return cmd_sink(argv[2]);
	if (argc == 5 && strcmp(argv[1], "uds-send") == 0)
		return cmd_uds_send(argv[2], argv[3], argv[4]);
	if (argc == 5 && strcmp(argv[1], "uds-echo") == 0)
		return cmd_uds_echo(argv[2], argv[3], argv[4]);
	if (argc == 4 && strcmp(argv[1], "uds-refused") == 0)
		return cmd_uds_refused(argv[2], argv[3]);
	if (argc == 3 && strcmp(argv[1], "uds-serve") == 0)
		return cmd_uds_serve(argv[2]);
	if (argc == 3 && strcmp(argv[1], "uds-sink") == 0)
		return cmd_uds_sink(argv[2]);
	fprintf(stderr, "usage: see tests/nested/tools/vsock-test.c\n");
	return 2;
}
