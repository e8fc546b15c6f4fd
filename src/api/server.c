/* The API server thread (see server.h): one epoll loop over the listening socket, an eventfd that
 * stops it, and up to max_clients non-blocking clients. Each client has the parser's bounded read
 * buffer and a write buffer drained on EPOLLOUT; while a client leaves more than
 * WRITE_BACKLOG_MAX of answers unread, its further requests wait (and so does reading from it).
 * A client that makes no progress (no byte read or written) for idle_timeout_ms is dropped, and
 * so is one whose request has not arrived whole idle_timeout_ms after its first byte (a byte a
 * second keeps a client busy, not served). When every slot is taken, a new client takes the slot
 * of the one that has waited longest for its own request or answer, if that is over
 * EVICT_AFTER_MS: slow or idle clients cannot lock the others out. */
#include "api/server.h"
#include "base/log.h"
#include "base/thread.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_IDLE_TIMEOUT_MS 10000
#define DEFAULT_MAX_CLIENTS	32
#define WRITE_BACKLOG_MAX	(64 * 1024)
#define ACCEPT_PAUSE_MS		100 /* after EMFILE and the like, before accepting again */
#define LISTEN_BACKLOG		16
#define LINGER_MS		1000 /* after a closing answer, how long to drain the client */
#define EVICT_AFTER_MS		1000 /* a full server gives such an idle client's slot away */

struct api_client {
	int fd;
	struct http_parser parser;
	char *wbuf;
	size_t wlen, woff, wcap; /* bytes queued, bytes of them sent, capacity */
	bool eof;		 /* the client will send nothing more */
	bool closing;		 /* answer what is queued, then close */
	bool lingering;		 /* answered and shut down for writing: draining until EOF */
	uint32_t events;	 /* the epoll mask registered */
	int64_t deadline;	 /* CLOCK_MONOTONIC ms: dropped then without progress */
	int64_t waiting_since;	 /* ms: the current partial request's first byte, or idle since */
	bool partial;		 /* waiting_since is a partial request's */
};

struct api_server {
	int listen_fd, epoll_fd, stop_fd;
	char *path;
	dev_t dev; /* the socket file we created: stop removes only that one */
	ino_t ino;
	api_handler_fn handler;
	void *ctx;
	int idle_timeout_ms;
	int max_clients;
	struct api_client **clients;
	int64_t accept_resume; /* 0, or when to watch the listening socket again */
	bool rejecting;	       /* a "too many clients" line was logged since the last accept */
	pthread_t thread;
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Notes when a partial request began (or the client went idle); after progress the idle
 * deadline moves on, but never past the current request's own. */
static void client_clock(struct api_server *srv, struct api_client *c, bool progress)
{
	int64_t now = now_ms();
	bool partial = http_parser_partial(&c->parser);

	if (partial != c->partial) {
		c->partial = partial;
		c->waiting_since = now;
	}
	if (progress)
		c->deadline = now + srv->idle_timeout_ms;
	if (c->partial && c->waiting_since + srv->idle_timeout_ms < c->deadline)
		c->deadline = c->waiting_since + srv->idle_timeout_ms;
}

char *api_fault_body(const char *message)
{
	json_t *obj = json_pack("{s:s}", "fault_message", message);
	char *s = obj ? json_dumps(obj, JSON_COMPACT) : NULL;

	json_decref(obj);
	/* json_pack refuses a message that is not UTF-8 (ours are ASCII): never answer nothing. */
	if (!s)
		s = strdup("{\"fault_message\":\"internal error\"}");
	return s;
}

static void *client_room(struct api_client *c, size_t n)
{
	if (c->wcap - c->wlen < n && c->woff) {
		memmove(c->wbuf, c->wbuf + c->woff, c->wlen - c->woff);
		c->wlen -= c->woff;
		c->woff = 0;
	}
	if (c->wcap - c->wlen < n) {
		size_t cap = c->wcap ? c->wcap * 2 : 4096;
		char *buf;

		while (cap - c->wlen < n)
			cap *= 2;
		buf = realloc(c->wbuf, cap);
		if (!buf)
			return NULL;
		c->wbuf = buf;
		c->wcap = cap;
	}
	return c->wbuf + c->wlen;
}

static void queue_bytes(struct api_client *c, const char *data, size_t n)
{
	char *dst = client_room(c, n);

	if (!dst) {
		log_error("api: out of memory queueing an answer; dropping the client");
		c->closing = true;
		c->eof = true;
		return;
	}
	memcpy(dst, data, n);
	c->wlen += n;
}

static void queue_response(struct api_client *c, int status, const char *body, bool close)
{
	size_t body_len = body ? strlen(body) : 0;
	size_t n = http_format_response(NULL, 0, status, body, body_len, close);
	char *dst = client_room(c, n);

	if (!dst) {
		log_error("api: out of memory queueing an answer; dropping the client");
		c->closing = true;
		c->eof = true;
		return;
	}
	http_format_response(dst, n, status, body, body_len, close);
	c->wlen += n;
}

static void queue_fault(struct api_client *c, int status, const char *message)
{
	char *body = api_fault_body(message);

	queue_response(c, status, body, true);
	free(body);
	c->closing = true;
}

static void handle_request(struct api_server *srv, struct api_client *c)
{
	const struct http_request *req = &c->parser.req;
	struct http_response resp = { 0 };

	srv->handler(srv->ctx, req, &resp);
	if (resp.status < 200 || resp.status > 599) {
		log_error("api: the handler answered %s %s with status %d", req->method_name,
			  req->path, resp.status);
		free(resp.body);
		resp.status = 500;
		resp.body = api_fault_body("internal error: the request got no valid answer");
	}
	queue_response(c, resp.status, resp.body, !req->keep_alive);
	free(resp.body);
	if (!req->keep_alive)
		c->closing = true;
}

/* Handles the complete requests buffered, while the client reads its answers. */
static void client_process(struct api_server *srv, struct api_client *c)
{
	struct http_parser *p = &c->parser;

	while (!c->closing) {
		if (c->wlen - c->woff >= WRITE_BACKLOG_MAX)
			return;
		switch (http_parser_next(p)) {
		case HTTP_PARSE_INCOMPLETE:
			/* After EOF nothing will complete what is left. */
			if (c->eof)
				c->closing = true;
			return;
		case HTTP_PARSE_CONTINUE:
			queue_bytes(c, http_continue, strlen(http_continue));
			break;
		case HTTP_PARSE_REQUEST:
			handle_request(srv, c);
			break;
		case HTTP_PARSE_ERROR:
			log_info("api: refused a request: %d %s", p->error_status,
				 p->error_message);
			queue_fault(c, p->error_status, p->error_message);
			break;
		}
	}
}

/* Returns -1 when the client is gone. */
static int client_flush(struct api_server *srv, struct api_client *c)
{
	while (c->woff < c->wlen) {
		ssize_t n = send(c->fd, c->wbuf + c->woff, c->wlen - c->woff,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n > 0) {
			c->woff += n;
			client_clock(srv, c, true);
		} else if (n < 0 && errno == EINTR) {
			continue;
		} else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			break;
		} else {
			return -1;
		}
	}
	if (c->woff == c->wlen)
		c->woff = c->wlen = 0;
	return 0;
}

/* One read per readiness event: a busy client cannot starve the others. -1 when it is gone. */
static int client_read(struct api_server *srv, struct api_client *c)
{
	size_t room;
	char *dst = http_parser_space(&c->parser, &room);
	ssize_t n;

	if (room == 0)
		return 0; /* a complete request is waiting for client_process */
	n = recv(c->fd, dst, room, MSG_DONTWAIT);
	if (n > 0) {
		http_parser_commit(&c->parser, n);
		client_clock(srv, c, true);
	} else if (n == 0) {
		c->eof = true;
	} else if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK) {
		return -1;
	}
	return 0;
}

static void client_close(struct api_server *srv, int slot)
{
	struct api_client *c = srv->clients[slot];

	epoll_ctl(srv->epoll_fd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	http_parser_fini(&c->parser);
	free(c->wbuf);
	free(c);
	srv->clients[slot] = NULL;
}

/* Flushes, then closes the client or registers what it waits for next. */
static void client_settle(struct api_server *srv, int slot)
{
	struct api_client *c = srv->clients[slot];
	struct epoll_event ev = { .data.ptr = c };
	uint32_t want = 0;

	/* Answers drained: requests held back by the backlog go on, for as long as the client
	 * takes the answers at once (bounded: nothing is read meanwhile, and the parser's buffer
	 * is). A request left in the buffer must not wait for a byte that may never come. */
	for (;;) {
		size_t queued;

		if (client_flush(srv, c) < 0)
			goto gone;
		if (c->woff != c->wlen)
			break; /* EPOLLOUT resumes */
		queued = c->wlen;
		client_process(srv, c);
		if (c->wlen == queued)
			break;
	}
	client_clock(srv, c, false);
	if (c->closing && c->woff == c->wlen && !c->lingering) {
		/* A UNIX socket closed with unread input resets its peer, which may then lose the
		 * answer (a 400 for garbage, a 413) while it is still sending. So: end our side,
		 * and read and discard until the client closes too, for at most LINGER_MS. */
		if (shutdown(c->fd, SHUT_WR) < 0)
			goto gone;
		c->lingering = true;
		c->eof = false;
		c->deadline = now_ms() + LINGER_MS;
	}
	if (c->lingering)
		want = EPOLLIN;
	else if (!c->closing && !c->eof && c->wlen - c->woff < WRITE_BACKLOG_MAX)
		want |= EPOLLIN;
	if (c->woff < c->wlen)
		want |= EPOLLOUT;
	if (want == c->events)
		return;
	ev.events = want;
	if (epoll_ctl(srv->epoll_fd, EPOLL_CTL_MOD, c->fd, &ev) < 0) {
		log_error("api: epoll_ctl on a client: %s", strerror(errno));
		goto gone;
	}
	c->events = want;
	return;
gone:
	client_close(srv, slot);
}

static void client_event(struct api_server *srv, int slot, uint32_t events)
{
	struct api_client *c = srv->clients[slot];

	if (events & EPOLLERR)
		goto gone;
	if (c->lingering) {
		char sink[4096];
		ssize_t n;

		while ((n = recv(c->fd, sink, sizeof(sink), MSG_DONTWAIT)) > 0)
			;
		if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
			goto gone;
		return;
	}
	if ((events & EPOLLIN) && client_read(srv, c) < 0)
		goto gone;
	/* Hung up with nothing to read: nothing we queue can reach it. */
	if ((events & EPOLLHUP) && !(events & EPOLLIN))
		goto gone;
	client_settle(srv, slot);
	return;
gone:
	client_close(srv, slot);
}

static void reject_client(struct api_server *srv, int fd)
{
	char buf[512], *body;
	size_t n;

	if (!srv->rejecting)
		log_warn("api: %d clients are connected to %s already; refusing more",
			 srv->max_clients, srv->path);
	srv->rejecting = true;
	body = api_fault_body("too many API clients are connected");
	n = http_format_response(buf, sizeof(buf), 503, body, body ? strlen(body) : 0, true);
	if (n <= sizeof(buf) && send(fd, buf, n, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
		log_debug("api: answering a refused client: %s", strerror(errno));
	free(body);
	close(fd);
}

/*
 * Every slot is taken: frees the slot of the client that has waited longest (for the rest of
 * its request, or idle between requests) with nothing left to send, when that is over
 * EVICT_AFTER_MS. Returns the slot, or -1 when every client is busy or recent.
 */
static int evict_client(struct api_server *srv)
{
	int64_t now = now_ms(), oldest = now - EVICT_AFTER_MS;
	int victim = -1;

	for (int i = 0; i < srv->max_clients; i++) {
		struct api_client *c = srv->clients[i];

		if (c && !c->lingering && c->woff == c->wlen && c->waiting_since < oldest) {
			oldest = c->waiting_since;
			victim = i;
		}
	}
	if (victim < 0)
		return -1;
	log_info("api: %d clients are connected to %s; dropping one %s for %lld ms for a new one",
		 srv->max_clients, srv->path,
		 srv->clients[victim]->partial ? "sending a request" : "idle",
		 (long long)(now - oldest));
	client_close(srv, victim);
	return victim;
}

static int client_add(struct api_server *srv, int fd)
{
	struct epoll_event ev = { .events = EPOLLIN };
	struct api_client *c;
	int slot;

	for (slot = 0; slot < srv->max_clients && srv->clients[slot]; slot++)
		;
	if (slot == srv->max_clients)
		slot = evict_client(srv);
	if (slot < 0) {
		reject_client(srv, fd);
		return 0;
	}
	c = calloc(1, sizeof(*c));
	if (!c || http_parser_init(&c->parser) < 0) {
		free(c);
		return -ENOMEM;
	}
	c->fd = fd;
	c->events = EPOLLIN;
	c->waiting_since = now_ms();
	c->deadline = c->waiting_since + srv->idle_timeout_ms;
	ev.data.ptr = c;
	if (epoll_ctl(srv->epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		int err = -errno;

		http_parser_fini(&c->parser);
		free(c);
		return err;
	}
	srv->clients[slot] = c;
	srv->rejecting = false;
	return 0;
}

static void listen_watch(struct api_server *srv, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = srv };

	if (epoll_ctl(srv->epoll_fd, EPOLL_CTL_MOD, srv->listen_fd, &ev) < 0)
		log_error("api: epoll_ctl on %s: %s", srv->path, strerror(errno));
}

/*
 * Only skiff's own user and root may drive the VM. The socket file is 0600 already; this holds
 * also when someone loosens its mode or hands the socket on.
 */
static bool peer_allowed(struct api_server *srv, int fd)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
		log_warn("api: refused a client on %s: its credentials are unknown (%s)", srv->path,
			 strerror(errno));
		return false;
	}
	if (cred.uid == 0 || cred.uid == geteuid())
		return true;
	log_warn("api: refused a client on %s: pid %d runs as uid %u, neither skiff's (%u) nor root",
		 srv->path, (int)cred.pid, (unsigned)cred.uid, (unsigned)geteuid());
	return false;
}

static void accept_clients(struct api_server *srv)
{
	for (;;) {
		int fd = accept4(srv->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		int ret;

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			/* Out of descriptors or memory: pause, not spin on the ready socket. */
			log_warn("api: cannot accept a client on %s: %s; pausing %d ms", srv->path,
				 strerror(errno), ACCEPT_PAUSE_MS);
			listen_watch(srv, 0);
			srv->accept_resume = now_ms() + ACCEPT_PAUSE_MS;
			return;
		}
		if (!peer_allowed(srv, fd)) {
			close(fd);
			continue;
		}
		ret = client_add(srv, fd);
		if (ret < 0) {
			log_warn("api: cannot serve a client on %s: %s", srv->path, strerror(-ret));
			close(fd);
		}
	}
}

/* Drops the clients past their deadline; a half-received request is answered 408 first. */
static void expire_clients(struct api_server *srv)
{
	int64_t now = now_ms();

	for (int i = 0; i < srv->max_clients; i++) {
		struct api_client *c = srv->clients[i];

		if (!c || now < c->deadline)
			continue;
		if (c->lingering) {
			client_close(srv, i);
			continue;
		}
		if (http_parser_partial(&c->parser) && c->woff == c->wlen) {
			char buf[512], *body = api_fault_body("the request did not arrive in time");
			size_t n = http_format_response(buf, sizeof(buf), 408, body,
							body ? strlen(body) : 0, true);

			if (n <= sizeof(buf) &&
			    send(c->fd, buf, n, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
				log_debug("api: answering a stalled client: %s", strerror(errno));
			free(body);
		}
		log_info("api: dropping a client of %s: %s %d ms", srv->path,
			 c->partial ? "its request did not arrive whole in" : "no progress for",
			 srv->idle_timeout_ms);
		client_close(srv, i);
	}
	if (srv->accept_resume && now >= srv->accept_resume) {
		srv->accept_resume = 0;
		listen_watch(srv, EPOLLIN);
	}
}

static int next_timeout(struct api_server *srv)
{
	int64_t next = srv->accept_resume ? srv->accept_resume : INT64_MAX, now;

	for (int i = 0; i < srv->max_clients; i++)
		if (srv->clients[i] && srv->clients[i]->deadline < next)
			next = srv->clients[i]->deadline;
	if (next == INT64_MAX)
		return -1;
	now = now_ms();
	if (next <= now)
		return 0;
	return next - now > INT32_MAX ? INT32_MAX : (int)(next - now);
}

static int client_slot(struct api_server *srv, struct api_client *c)
{
	for (int i = 0; i < srv->max_clients; i++)
		if (srv->clients[i] == c)
			return i;
	return -1;
}

static void *server_thread(void *arg)
{
	struct api_server *srv = arg;
	struct epoll_event events[16];

	for (;;) {
		int n = epoll_wait(srv->epoll_fd, events, 16, next_timeout(srv));

		if (n < 0) {
			if (errno == EINTR)
				continue;
			log_error("api: epoll_wait for %s: %s; the API server stops", srv->path,
				  strerror(errno));
			return NULL;
		}
		for (int i = 0; i < n; i++) {
			void *ptr = events[i].data.ptr;
			int slot;

			if (ptr == &srv->stop_fd)
				return NULL;
			if (ptr == srv) {
				accept_clients(srv);
				continue;
			}
			slot = client_slot(srv, ptr);
			if (slot >= 0)
				client_event(srv, slot, events[i].events);
		}
		expire_clients(srv);
	}
}

/* A socket file nobody listens on is left by a skiff that died: replace it. Anything else at
 * the path is not ours to remove. */
static int clear_stale_socket(const char *path, const struct sockaddr_un *addr)
{
	struct stat st;
	int fd, ret, err;

	if (lstat(path, &st) < 0) {
		if (errno == ENOENT)
			return 0;
		err = errno;
		log_error("api: cannot use %s for the API socket: %s", path, strerror(err));
		return -err;
	}
	if (!S_ISSOCK(st.st_mode)) {
		log_error("api: %s exists and is not a socket; not replacing it with the API "
			  "socket",
			  path);
		return -EEXIST;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		err = errno;
		log_error("api: socket for checking %s: %s", path, strerror(err));
		return -err;
	}
	ret = connect(fd, (const struct sockaddr *)addr, sizeof(*addr));
	err = errno;
	close(fd);
	if (ret == 0 || err == EAGAIN) {
		log_error("api: %s is in use: another process listens on it", path);
		return -EADDRINUSE;
	}
	if (err != ECONNREFUSED) {
		log_error("api: cannot tell whether %s is in use: connect: %s", path,
			  strerror(err));
		return -err;
	}
	if (unlink(path) < 0 && errno != ENOENT) {
		err = errno;
		log_error("api: cannot remove the stale socket %s: %s", path, strerror(err));
		return -err;
	}
	log_info("api: replaced the stale socket %s", path);
	return 0;
}

static void server_free(struct api_server *srv)
{
	if (srv->clients) {
		for (int i = 0; i < srv->max_clients; i++)
			if (srv->clients[i])
				client_close(srv, i);
		free(srv->clients);
	}
	if (srv->stop_fd >= 0)
		close(srv->stop_fd);
	if (srv->epoll_fd >= 0)
		close(srv->epoll_fd);
	if (srv->listen_fd >= 0) {
		struct stat st;

		close(srv->listen_fd);
		if (stat(srv->path, &st) == 0 && st.st_dev == srv->dev && st.st_ino == srv->ino)
			unlink(srv->path);
	}
	free(srv->path);
	free(srv);
}

int api_server_start_opts(struct api_server **out, const char *path, api_handler_fn handler,
			  void *ctx, const struct api_server_options *opts)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	struct epoll_event ev = { .events = EPOLLIN };
	struct api_server *srv;
	struct stat st;
	int ret;

	if (!path[0]) {
		/* An empty path would bind an abstract socket any local user can connect to. */
		log_error("api: the socket path is empty");
		return -EINVAL;
	}
	if (strlen(path) >= sizeof(addr.sun_path)) {
		log_error("api: the socket path %s is longer than %zu bytes", path,
			  sizeof(addr.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	strcpy(addr.sun_path, path);
	ret = clear_stale_socket(path, &addr);
	if (ret < 0)
		return ret;

	srv = calloc(1, sizeof(*srv));
	if (!srv) {
		log_error("api: out of memory starting the API server on %s", path);
		return -ENOMEM;
	}
	srv->listen_fd = srv->epoll_fd = srv->stop_fd = -1;
	srv->handler = handler;
	srv->ctx = ctx;
	srv->idle_timeout_ms = opts && opts->idle_timeout_ms > 0 ? opts->idle_timeout_ms
								  : DEFAULT_IDLE_TIMEOUT_MS;
	srv->max_clients =
		opts && opts->max_clients > 0 ? opts->max_clients : DEFAULT_MAX_CLIENTS;
	srv->path = strdup(path);
	srv->clients = calloc(srv->max_clients, sizeof(*srv->clients));
	if (!srv->path || !srv->clients) {
		log_error("api: out of memory starting the API server on %s", path);
		ret = -ENOMEM;
		goto fail;
	}

	srv->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (srv->listen_fd < 0) {
		ret = -errno;
		log_error("api: socket for %s: %s", path, strerror(-ret));
		goto fail;
	}
	/*
	 * The file bind() creates takes the socket inode's mode less the umask: set the mode on the
	 * inode first, so the socket is 0600 whatever the umask, with no window where it is wider.
	 */
	if (fchmod(srv->listen_fd, 0600) < 0) {
		ret = -errno;
		log_error("api: cannot set the mode of the API socket %s: %s", path, strerror(-ret));
		goto fail;
	}
	if (bind(srv->listen_fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		ret = -errno;
		log_error("api: cannot bind the API socket %s: %s", path, strerror(-ret));
		close(srv->listen_fd);
		srv->listen_fd = -1; /* the file there, if any, is not ours */
		goto fail;
	}
	if (stat(path, &st) == 0) {
		srv->dev = st.st_dev;
		srv->ino = st.st_ino;
	}
	if (listen(srv->listen_fd, LISTEN_BACKLOG) < 0) {
		ret = -errno;
		log_error("api: cannot listen on %s: %s", path, strerror(-ret));
		goto fail;
	}
	srv->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	srv->stop_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (srv->epoll_fd < 0 || srv->stop_fd < 0) {
		ret = -errno;
		log_error("api: epoll/eventfd for %s: %s", path, strerror(-ret));
		goto fail;
	}
	ev.data.ptr = srv;
	if (epoll_ctl(srv->epoll_fd, EPOLL_CTL_ADD, srv->listen_fd, &ev) < 0)
		goto fail_epoll;
	ev.data.ptr = &srv->stop_fd;
	if (epoll_ctl(srv->epoll_fd, EPOLL_CTL_ADD, srv->stop_fd, &ev) < 0)
		goto fail_epoll;

	/* Signals are for the main and vCPU threads, never this one (base/thread.h). */
	ret = thread_start(THREAD_API, "skiff-api", server_thread, srv, &srv->thread);
	if (ret < 0) {
		log_error("api: cannot start the API server thread for %s: %s", path,
			  strerror(-ret));
		goto fail;
	}
	*out = srv;
	return 0;

fail_epoll:
	ret = -errno;
	log_error("api: epoll_ctl for %s: %s", path, strerror(-ret));
fail:
	server_free(srv);
	return ret;
}

int api_server_start(struct api_server **out, const char *path, api_handler_fn handler,
		     void *ctx)
{
	return api_server_start_opts(out, path, handler, ctx, NULL);
}

void api_server_stop(struct api_server *srv)
{
	if (!srv)
		return;
	if (eventfd_write(srv->stop_fd, 1) != 0)
		log_error("api: cannot wake the API server thread: %s", strerror(errno));
	pthread_join(srv->thread, NULL);
	server_free(srv);
}
