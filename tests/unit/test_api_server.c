/* The API server on a real UNIX socket: keep-alive and pipelining, requests serialized across
 * concurrent clients, stalled clients dropped after the idle time while others are served,
 * refused input answered as JSON faults and closed, the client limit, and the socket file's life
 * (a stale one replaced, a live one or a regular file left alone, removed on stop). Every client
 * read has a deadline: a broken server fails the test instead of hanging it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "api/server.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define IO_TIMEOUT_MS 5000

struct fixture {
	char dir[64];
	char path[128];
	struct api_server *srv;
	int requests; /* bumped by the handler without a lock: requests are serialized */
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Answers {"method", "path", "body", "n"}; "/empty" answers 204. */
static void echo_handler(void *ctx, const struct http_request *req, struct http_response *resp)
{
	struct fixture *f = ctx;
	json_t *obj;

	f->requests++;
	if (strcmp(req->path, "/empty") == 0) {
		resp->status = 204;
		return;
	}
	obj = json_pack("{s:s, s:s, s:s#, s:i}", "method", req->method_name, "path", req->path,
			"body", req->body, (int)req->body_len, "n", f->requests);
	resp->status = 200;
	resp->body = json_dumps(obj, JSON_COMPACT);
	json_decref(obj);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	strcpy(f->dir, "/tmp/skiff-api-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/api.sock", f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	api_server_stop(f->srv);
	unlink(f->path);
	rmdir(f->dir);
	free(f);
	return 0;
}

static void start(struct fixture *f, int idle_ms, int max_clients)
{
	struct api_server_options opts = { .idle_timeout_ms = idle_ms, .max_clients = max_clients };

	assert_int_equal(api_server_start_opts(&f->srv, f->path, echo_handler, f, &opts), 0);
}

/* A test client connection with its own receive buffer (answers may arrive together). */
struct conn {
	int fd;
	char buf[256 * 1024];
	size_t len;
};

struct response {
	int status;
	char head[1024];
	char body[4096];
	size_t body_len;
};

static int try_connect(const char *path)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	strcpy(addr.sun_path, path);
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

static struct conn *conn_open(const char *path)
{
	struct conn *c = malloc(sizeof(*c));

	assert_non_null(c);
	c->fd = try_connect(path);
	assert_true(c->fd >= 0);
	c->len = 0;
	return c;
}

static void conn_close(struct conn *c)
{
	close(c->fd);
	free(c);
}

static void send_str(struct conn *c, const char *s)
{
	size_t n = strlen(s), off = 0;

	while (off < n) {
		ssize_t w = send(c->fd, s + off, n - off, MSG_NOSIGNAL);

		assert_true(w > 0);
		off += w;
	}
}

/* Reads more into c->buf within the deadline: bytes read, 0 on EOF (or reset), -1 on timeout. */
static ssize_t conn_fill(struct conn *c, int64_t deadline)
{
	struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
	int64_t left = deadline - now_ms();
	ssize_t n;

	if (left < 0 || poll(&pfd, 1, (int)left) <= 0)
		return -1;
	n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
	if (n < 0 && errno == ECONNRESET)
		return 0;
	assert_true(n >= 0);
	c->len += n;
	return n;
}

/* Reads one response (head and Content-Length body). 0, or -1 on timeout or EOF first. */
static int conn_response(struct conn *c, struct response *r, int timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;
	char *end, *cl;
	size_t head_len, total;

	memset(r, 0, sizeof(*r));
	while (!(end = memmem(c->buf, c->len, "\r\n\r\n", 4)))
		if (conn_fill(c, deadline) <= 0)
			return -1;
	head_len = end + 4 - c->buf;
	assert_true(head_len < sizeof(r->head));
	memcpy(r->head, c->buf, head_len);
	assert_int_equal(sscanf(r->head, "HTTP/1.1 %d ", &r->status), 1);
	cl = strstr(r->head, "Content-Length: ");
	r->body_len = cl ? strtoul(cl + 16, NULL, 10) : 0;
	assert_true(r->body_len < sizeof(r->body));
	total = head_len + r->body_len;
	while (c->len < total)
		if (conn_fill(c, deadline) <= 0)
			return -1;
	memcpy(r->body, c->buf + head_len, r->body_len);
	memmove(c->buf, c->buf + total, c->len - total);
	c->len -= total;
	return 0;
}

/* True when the server closes the connection within timeout_ms (after what it still sends). */
static bool conn_closed_within(struct conn *c, int timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;
	ssize_t n;

	while ((n = conn_fill(c, deadline)) > 0)
		;
	return n == 0;
}

static void expect_json_field(const struct response *r, const char *key, const char *value)
{
	json_error_t err;
	json_t *obj = json_loadb(r->body, r->body_len, 0, &err);
	const char *got;

	if (!obj)
		fail_msg("not JSON: %.*s", (int)r->body_len, r->body);
	got = json_string_value(json_object_get(obj, key));
	if (!got || (value && strcmp(got, value) != 0))
		fail_msg("%s is \"%s\", expected \"%s\" in %.*s", key, got ? got : "(none)",
			 value ? value : "(any)", (int)r->body_len, r->body);
	json_decref(obj);
}

/* A refused request: the status, a JSON fault_message, "Connection: close", then EOF. */
static void expect_fault(struct conn *c, int status)
{
	struct response r;

	assert_int_equal(conn_response(c, &r, IO_TIMEOUT_MS), 0);
	assert_int_equal(r.status, status);
	assert_non_null(strstr(r.head, "Content-Type: application/json\r\n"));
	assert_non_null(strstr(r.head, "Connection: close\r\n"));
	expect_json_field(&r, "fault_message", NULL);
	assert_true(conn_closed_within(c, IO_TIMEOUT_MS));
}

static void test_keep_alive_and_pipelining(void **state)
{
	struct fixture *f = *state;
	struct conn *c;
	struct response r;

	start(f, 0, 0);
	c = conn_open(f->path);
	send_str(c, "GET /machine-config HTTP/1.1\r\nHost: localhost\r\n\r\n");
	assert_int_equal(conn_response(c, &r, IO_TIMEOUT_MS), 0);
	assert_int_equal(r.status, 200);
	assert_null(strstr(r.head, "Connection: close"));
	expect_json_field(&r, "method", "GET");
	expect_json_field(&r, "path", "/machine-config");

	send_str(c, "PUT /drives/root?x HTTP/1.1\r\nContent-Length: 13\r\n\r\n{\"a\": \"b c\"}\n");
	assert_int_equal(conn_response(c, &r, IO_TIMEOUT_MS), 0);
	assert_int_equal(r.status, 200);
	expect_json_field(&r, "method", "PUT");
	expect_json_field(&r, "path", "/drives/root");
	expect_json_field(&r, "body", "{\"a\": \"b c\"}\n");

	/* Three in one write; the last asks to close. */
	send_str(c, "GET /1 HTTP/1.1\r\n\r\nGET /empty HTTP/1.1\r\n\r\n"
		    "GET /3 HTTP/1.1\r\nConnection: close\r\n\r\n");
	assert_int_equal(conn_response(c, &r, IO_TIMEOUT_MS), 0);
	expect_json_field(&r, "path", "/1");
	assert_int_equal(conn_response(c, &r, IO_TIMEOUT_MS), 0);
	assert_int_equal(r.status, 204);
	assert_int_equal(r.body_len, 0);
	assert_int_equal(conn_response(c, &r, IO_TIMEOUT_MS), 0);
	expect_json_field(&r, "path", "/3");
	assert_non_null(strstr(r.head, "Connection: close\r\n"));
	assert_true(conn_closed_within(c, IO_TIMEOUT_MS));
	conn_close(c);
	assert_int_equal(f->requests, 5);
}

static void test_http10_closes(void **state)
{
	struct fixture *f = *state;
	struct conn *c;
	struct response r;

	start(f, 0, 0);
	c = conn_open(f->path);
	send_str(c, "GET /old HTTP/1.0\r\n\r\n");
	assert_int_equal(conn_response(c, &r, IO_TIMEOUT_MS), 0);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.head, "Connection: close\r\n"));
	assert_true(conn_closed_within(c, IO_TIMEOUT_MS));
	conn_close(c);
}

static void test_expect_continue(void **state)
{
	struct fixture *f = *state;
	struct conn *c;
	struct response r;

	start(f, 0, 0);
	c = conn_open(f->path);
	send_str(c, "PUT /x HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n");
	assert_int_equal(conn_response(c, &r, IO_TIMEOUT_MS), 0);
	assert_int_equal(r.status, 100);
	assert_string_equal(r.head, "HTTP/1.1 100 Continue\r\n\r\n");
	send_str(c, "{}");
	assert_int_equal(conn_response(c, &r, IO_TIMEOUT_MS), 0);
	assert_int_equal(r.status, 200);
	expect_json_field(&r, "body", "{}");
	conn_close(c);
}

struct hammer {
	const char *path;
	int ok;
};

static void *hammer_thread(void *arg)
{
	struct hammer *h = arg;
	struct conn *c = NULL;
	struct response r;
	const char *req = "PUT /count HTTP/1.1\r\nContent-Length: 1\r\n\r\n+";

	for (int i = 0; i < 50; i++) {
		/* Reconnect now and then: accepting races with serving. */
		if (i % 10 == 0) {
			if (c)
				conn_close(c);
			c = malloc(sizeof(*c));
			c->fd = try_connect(h->path);
			c->len = 0;
			if (c->fd < 0)
				break;
		}
		/* No cmocka asserts off the main thread: count, and let main check. */
		if (send(c->fd, req, strlen(req), MSG_NOSIGNAL) != (ssize_t)strlen(req))
			break;
		if (conn_response(c, &r, IO_TIMEOUT_MS) < 0 || r.status != 200)
			break;
		h->ok++;
	}
	if (c) {
		if (c->fd >= 0)
			close(c->fd);
		free(c);
	}
	return NULL;
}

static void test_concurrent_clients_are_serialized(void **state)
{
	struct fixture *f = *state;
	struct hammer h[8];
	pthread_t t[8];
	int ok = 0;

	start(f, 0, 0);
	for (int i = 0; i < 8; i++) {
		h[i] = (struct hammer){ .path = f->path };
		assert_int_equal(pthread_create(&t[i], NULL, hammer_thread, &h[i]), 0);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(t[i], NULL);
		ok += h[i].ok;
	}
	assert_int_equal(ok, 400);
	/* The handler's unlocked counter is exact: no two requests ran at once. */
	assert_int_equal(f->requests, 400);
}

static void test_idle_client_dropped_while_others_served(void **state)
{
	struct fixture *f = *state;
	struct conn *idle, *busy;
	struct response r;
	int64_t t0;

	start(f, 300, 0);
	idle = conn_open(f->path);
	t0 = now_ms();
	busy = conn_open(f->path);
	/* The busy client keeps going past the idle client's deadline. */
	for (int i = 0; i < 8; i++) {
		send_str(busy, "GET /busy HTTP/1.1\r\n\r\n");
		assert_int_equal(conn_response(busy, &r, IO_TIMEOUT_MS), 0);
		assert_int_equal(r.status, 200);
		usleep(100 * 1000);
	}
	/* Nothing was sent: nothing is answered, the connection is just closed. */
	assert_true(conn_closed_within(idle, IO_TIMEOUT_MS));
	assert_int_equal(idle->len, 0);
	assert_true(now_ms() - t0 >= 250);
	send_str(busy, "GET /still HTTP/1.1\r\n\r\n");
	assert_int_equal(conn_response(busy, &r, IO_TIMEOUT_MS), 0);
	expect_json_field(&r, "path", "/still");
	conn_close(idle);
	conn_close(busy);
}

static void test_half_request_then_silence(void **state)
{
	struct fixture *f = *state;
	struct conn *c;
	int64_t t0;

	start(f, 300, 0);
	c = conn_open(f->path);
	t0 = now_ms();
	send_str(c, "PUT /x HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc");
	expect_fault(c, 408);
	assert_true(now_ms() - t0 >= 250);
	conn_close(c);
	assert_int_equal(f->requests, 0);
}

static void test_oversized_body_413(void **state)
{
	struct fixture *f = *state;
	struct conn *c;

	start(f, 0, 0);
	c = conn_open(f->path);
	send_str(c, "PUT /x HTTP/1.1\r\nContent-Length: 100000\r\n\r\n");
	expect_fault(c, 413);
	conn_close(c);
	assert_int_equal(f->requests, 0);
}

static void test_garbage_400(void **state)
{
	struct fixture *f = *state;
	struct conn *c;

	start(f, 0, 0);
	c = conn_open(f->path);
	send_str(c, "hello, is anybody there?\r\n\r\n");
	expect_fault(c, 400);
	conn_close(c);

	/* Garbage after a good request: the good one is answered first. */
	c = conn_open(f->path);
	send_str(c, "GET /ok HTTP/1.1\r\n\r\nGET /\x01 HTTP/1.1\r\n\r\n");
	{
		struct response r;

		assert_int_equal(conn_response(c, &r, IO_TIMEOUT_MS), 0);
		assert_int_equal(r.status, 200);
	}
	expect_fault(c, 400);
	conn_close(c);
	assert_int_equal(f->requests, 1);
}

static void test_chunked_refused(void **state)
{
	struct fixture *f = *state;
	struct conn *c;
	struct response r;

	start(f, 0, 0);
	c = conn_open(f->path);
	send_str(c, "PUT /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n");
	assert_int_equal(conn_response(c, &r, IO_TIMEOUT_MS), 0);
	assert_true(r.status == 501 || r.status == 411);
	expect_json_field(&r, "fault_message", NULL);
	assert_true(conn_closed_within(c, IO_TIMEOUT_MS));
	conn_close(c);
}

static void test_client_limit(void **state)
{
	struct fixture *f = *state;
	struct conn *a, *b, *extra;
	struct response r;

	start(f, 0, 2);
	a = conn_open(f->path);
	b = conn_open(f->path);
	/* Make sure both are accepted before the third comes. */
	send_str(a, "GET /a HTTP/1.1\r\n\r\n");
	assert_int_equal(conn_response(a, &r, IO_TIMEOUT_MS), 0);
	send_str(b, "GET /b HTTP/1.1\r\n\r\n");
	assert_int_equal(conn_response(b, &r, IO_TIMEOUT_MS), 0);
	extra = conn_open(f->path);
	expect_fault(extra, 503);
	conn_close(extra);
	/* A slot frees when a client leaves. */
	conn_close(a);
	for (int tries = 0;; tries++) {
		extra = conn_open(f->path);
		send_str(extra, "GET /again HTTP/1.1\r\n\r\n");
		assert_int_equal(conn_response(extra, &r, IO_TIMEOUT_MS), 0);
		conn_close(extra);
		if (r.status == 200)
			break;
		assert_true(tries < 50);
		usleep(20 * 1000);
	}
	conn_close(b);
}

/* A client that pipelines without ever reading cannot stall the server for the others. */
static void test_client_not_reading_does_not_block_others(void **state)
{
	struct fixture *f = *state;
	struct conn *hog, *c;
	struct response r;
	const char *req = "GET /hog HTTP/1.1\r\n\r\n";
	size_t sent = 0;

	start(f, 0, 0);
	hog = conn_open(f->path);
	fcntl(hog->fd, F_SETFL, O_NONBLOCK);
	/* Push requests until the socket is full both ways (the server stopped reading). */
	for (int64_t deadline = now_ms() + 2000; now_ms() < deadline;) {
		ssize_t n = send(hog->fd, req, strlen(req), MSG_NOSIGNAL);

		if (n < 0) {
			assert_int_equal(errno, EAGAIN);
			usleep(10 * 1000);
			continue;
		}
		assert_int_equal(n, strlen(req));
		sent++;
	}
	assert_true(sent > 1000);
	c = conn_open(f->path);
	send_str(c, "GET /other HTTP/1.1\r\n\r\n");
	assert_int_equal(conn_response(c, &r, IO_TIMEOUT_MS), 0);
	expect_json_field(&r, "path", "/other");
	conn_close(c);
	conn_close(hog);
}

/* 1000 pipelined requests sent at once, then only read: every one is answered. (Requests left in
 * the buffer once the answers drained used to wait for a byte that never came, then got 408.) */
static void test_pipelined_burst_all_answered(void **state)
{
	struct fixture *f = *state;
	static char burst[1000 * 32];
	struct response r;
	size_t n = 0;
	struct conn *c;

	start(f, 0, 0);
	c = conn_open(f->path);
	for (int i = 0; i < 1000; i++)
		n += (size_t)snprintf(burst + n, sizeof(burst) - n, "GET /p%d HTTP/1.1\r\n\r\n", i);
	send_str(c, burst);
	for (int i = 0; i < 1000; i++) {
		char path[16];

		if (conn_response(c, &r, IO_TIMEOUT_MS) != 0)
			fail_msg("answer %d of 1000 did not come", i + 1);
		assert_int_equal(r.status, 200);
		snprintf(path, sizeof(path), "/p%d", i);
		expect_json_field(&r, "path", path);
	}
	conn_close(c);
}

/* A request must arrive whole within the idle time of its first byte: a byte every 100 ms is
 * progress, but not a request. */
static void test_trickled_request_times_out(void **state)
{
	struct fixture *f = *state;
	const char *req = "GET /slow HTTP/1.1\r\nX-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
	int64_t t0;
	struct conn *c;
	struct response r;
	size_t i;

	start(f, 500, 0);
	c = conn_open(f->path);
	t0 = now_ms();
	for (i = 0; req[i] && now_ms() - t0 < 3000; i++) {
		char one[2] = { req[i], 0 };

		if (send(c->fd, one, 1, MSG_NOSIGNAL) != 1)
			break;
		usleep(100 * 1000);
	}
	/* Cut off at about 500 ms (5 bytes), long before the 7 s the whole request takes. */
	assert_true(now_ms() - t0 < 2500);
	assert_int_equal(conn_response(c, &r, IO_TIMEOUT_MS), 0);
	assert_int_equal(r.status, 408);
	assert_true(conn_closed_within(c, IO_TIMEOUT_MS));
	assert_int_equal(f->requests, 0);
	conn_close(c);
}

/* Every slot held by clients that send a byte now and then: a new client still gets served, in
 * the slot of the one that has waited longest. */
static void test_slow_clients_do_not_lock_out(void **state)
{
	struct fixture *f = *state;
	struct conn *slow[4], *c;
	struct response r;

	start(f, 0, 4);
	for (int i = 0; i < 4; i++) {
		slow[i] = conn_open(f->path);
		send_str(slow[i], "G");
	}
	for (int k = 0; k < 12; k++) {
		usleep(100 * 1000);
		for (int i = 0; i < 4; i++)
			send(slow[i]->fd, "E", 1, MSG_NOSIGNAL);
	}
	c = conn_open(f->path);
	send_str(c, "GET /good HTTP/1.1\r\n\r\n");
	assert_int_equal(conn_response(c, &r, IO_TIMEOUT_MS), 0);
	assert_int_equal(r.status, 200);
	expect_json_field(&r, "path", "/good");
	conn_close(c);
	/* The first slow client lost its slot. */
	assert_true(conn_closed_within(slow[0], IO_TIMEOUT_MS));
	for (int i = 0; i < 4; i++)
		conn_close(slow[i]);
}

static void test_stale_socket_replaced(void **state)
{
	struct fixture *f = *state;
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	struct conn *c;
	struct response r;
	struct stat st;

	/* What a crashed skiff leaves: the file, nobody listening. */
	strcpy(addr.sun_path, f->path);
	assert_int_equal(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
	close(fd);
	assert_int_equal(stat(f->path, &st), 0);
	assert_int_equal(try_connect(f->path), -ECONNREFUSED);

	start(f, 0, 0);
	c = conn_open(f->path);
	send_str(c, "GET /fresh HTTP/1.1\r\n\r\n");
	assert_int_equal(conn_response(c, &r, IO_TIMEOUT_MS), 0);
	assert_int_equal(r.status, 200);
	conn_close(c);
}

static void test_live_socket_and_regular_file_refused(void **state)
{
	struct fixture *f = *state;
	struct api_server *second = NULL;
	char file[160];
	struct conn *c;
	struct response r;
	int fd;

	start(f, 0, 0);
	assert_int_equal(api_server_start(&second, f->path, echo_handler, f), -EADDRINUSE);
	assert_null(second);
	/* The first server still owns and serves its socket. */
	c = conn_open(f->path);
	send_str(c, "GET /first HTTP/1.1\r\n\r\n");
	assert_int_equal(conn_response(c, &r, IO_TIMEOUT_MS), 0);
	assert_int_equal(r.status, 200);
	conn_close(c);

	snprintf(file, sizeof(file), "%s/regular", f->dir);
	fd = open(file, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "keep me", 7), 7);
	close(fd);
	assert_int_equal(api_server_start(&second, file, echo_handler, f), -EEXIST);
	assert_int_equal(access(file, F_OK), 0);
	unlink(file);
}

static void test_stop_removes_socket(void **state)
{
	struct fixture *f = *state;
	struct conn *c;

	start(f, 0, 0);
	assert_int_equal(access(f->path, F_OK), 0);
	/* A connected client and one half-way through a request do not hold the stop up. */
	c = conn_open(f->path);
	send_str(c, "PUT /x HTTP/1.1\r\nContent-Length: 5\r\n\r\nab");
	api_server_stop(f->srv);
	f->srv = NULL;
	assert_int_equal(access(f->path, F_OK), -1);
	assert_int_equal(errno, ENOENT);
	assert_true(conn_closed_within(c, IO_TIMEOUT_MS));
	conn_close(c);
	assert_int_equal(try_connect(f->path), -ENOENT);
}

static void test_path_too_long(void **state)
{
	struct api_server *srv = NULL;
	char path[200];

	memset(path, 'a', sizeof(path) - 1);
	path[0] = '/';
	path[sizeof(path) - 1] = '\0';
	assert_int_equal(api_server_start(&srv, path, echo_handler, NULL), -ENAMETOOLONG);
	assert_null(srv);
}

/* Entries of a /proc/self directory (fd, task), without . and .. (nor opendir's own fd). */
static long count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	long n = 0;

	assert_non_null(d);
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - (strcmp(dir, "/proc/self/fd") == 0);
}

static long rss_kib(void)
{
	FILE *f = fopen("/proc/self/status", "re");
	char line[256];
	long v = -1;

	assert_non_null(f);
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, "VmRSS:", 6) == 0)
			v = strtol(line + 6, NULL, 10);
	fclose(f);
	return v;
}

/* One server life: a client served, another left connected (and one half-sent request) when
 * the server stops; the stop must close them all. */
static void one_server_life(struct fixture *f)
{
	struct conn *a, *b, *c;
	struct response r;

	start(f, 10000, 0);
	a = conn_open(f->path);
	b = conn_open(f->path);
	c = conn_open(f->path);
	send_str(a, "GET /x HTTP/1.1\r\n\r\n");
	assert_int_equal(conn_response(a, &r, IO_TIMEOUT_MS), 0);
	assert_int_equal(r.status, 200);
	send_str(c, "PUT /x HTTP/1.1\r\nContent-Length: 10\r\n\r\n{");
	api_server_stop(f->srv);
	f->srv = NULL;
	conn_close(a);
	conn_close(b);
	conn_close(c);
}

/* 100 API server starts and stops in one process leave no descriptor, thread or memory behind. */
static void test_hundred_restarts_leave_nothing_behind(void **state)
{
	struct fixture *f = *state;
	/* Under qemu-user (tests/run says so) the emulator's own threads come and go, and the RSS
	 * is the emulator's, translated code included: a thread left per life would still add 100. */
	bool emulated = getenv("SKIFF_TEST_EMULATED") != NULL;
	long fds, threads, rss, fds_after, threads_after, rss_after;

	for (int i = 0; i < 5; i++)
		one_server_life(f);
	fds = count_entries("/proc/self/fd");
	threads = count_entries("/proc/self/task");
	rss = rss_kib();
	for (int i = 0; i < 100; i++)
		one_server_life(f);
	fds_after = count_entries("/proc/self/fd");
	threads_after = count_entries("/proc/self/task");
	rss_after = rss_kib();
	print_message("# fds %ld -> %ld, threads %ld -> %ld, VmRSS %ld -> %ld KiB\n", fds,
		      fds_after, threads, threads_after, rss, rss_after);
	assert_int_equal(fds_after, fds);
	assert_true(threads_after <= threads + (emulated ? 2 : 0));
#ifndef __SANITIZE_ADDRESS__
	/* Under ASan freed memory waits in a quarantine; LeakSanitizer checks the heap instead. */
	if (!emulated)
		assert_true(rss_after - rss <= 1024);
#endif
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_keep_alive_and_pipelining),
		T(test_http10_closes),
		T(test_expect_continue),
		T(test_concurrent_clients_are_serialized),
		T(test_idle_client_dropped_while_others_served),
		T(test_half_request_then_silence),
		T(test_oversized_body_413),
		T(test_garbage_400),
		T(test_chunked_refused),
		T(test_client_limit),
		T(test_client_not_reading_does_not_block_others),
		T(test_pipelined_burst_all_answered),
		T(test_trickled_request_times_out),
		T(test_slow_clients_do_not_lock_out),
		T(test_stale_socket_replaced),
		T(test_live_socket_and_regular_file_refused),
		T(test_stop_removes_socket),
		T(test_path_too_long),
		T(test_hundred_restarts_leave_nothing_behind),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
