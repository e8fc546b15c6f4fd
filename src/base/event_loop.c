#include "base/event_loop.h"

#include "base/log.h"
#include "base/thread.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define EVENTS_PER_WAIT 32

/* One watched fd. Only the loop thread reads or changes watches. A watch deleted while a batch of
 * events is being dispatched stays allocated (marked `deleted`) until the batch ends, because a
 * later event of the same batch may still point at it. */
struct watch {
	int fd;
	event_fn fn;
	void *ctx;
	bool deleted;
	struct watch *next;
};

enum request_op { REQ_ADD, REQ_MOD, REQ_DEL, REQ_CALL, REQ_HOLD };

/* A request from another thread, on that thread's stack until `done`. */
struct request {
	enum request_op op;
	int fd;
	uint32_t events;
	event_fn fn;
	void *ctx;
	void (*call)(void *arg);
	void *arg;
	int result;
	bool done;
	struct request *next;
};

struct event_loop {
	char name[16];
	int epfd;
	int wakefd; /* eventfd: requests are queued, or the loop must stop */
	int holdfd; /* an epoll set of the wakeup eventfd alone: what a held loop waits on */
	pthread_t thread;

	pthread_mutex_t lock; /* protects the request queue and the stop flags */
	pthread_cond_t done;  /* a request finished */
	struct request *queue_head, *queue_tail;
	bool stop;    /* event_loop_destroy() asked the thread to end */
	bool stopped; /* the thread no longer takes requests */

	/* Loop thread only. */
	struct watch *watches;
	struct watch *graveyard; /* deleted during the current batch */
	bool dispatching;
	bool held; /* event_loop_hold(): requests run, callbacks wait */
};

static __thread struct event_loop *current_loop;

/* The epoll data of the wakeup eventfd: no watch has this address. */
static char wake_marker;

bool event_loop_on_thread(const struct event_loop *loop)
{
	return current_loop == loop;
}

static struct watch *find_watch(struct event_loop *loop, int fd)
{
	for (struct watch *w = loop->watches; w; w = w->next)
		if (w->fd == fd)
			return w;
	return NULL;
}

static int do_add(struct event_loop *loop, int fd, uint32_t events, event_fn fn, void *ctx)
{
	struct epoll_event ev = { .events = events };
	struct watch *w;

	if (events & EPOLLET)
		return -EINVAL; /* a hold would lose the edge (event_loop.h) */
	if (find_watch(loop, fd))
		return -EEXIST;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->fd = fd;
	w->fn = fn;
	w->ctx = ctx;
	ev.data.ptr = w;
	if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		int err = -errno;

		free(w);
		return err;
	}
	w->next = loop->watches;
	loop->watches = w;
	return 0;
}

static int do_mod(struct event_loop *loop, int fd, uint32_t events)
{
	struct watch *w = find_watch(loop, fd);
	struct epoll_event ev = { .events = events };

	if (!w)
		return -ENOENT;
	ev.data.ptr = w;
	return epoll_ctl(loop->epfd, EPOLL_CTL_MOD, fd, &ev) < 0 ? -errno : 0;
}

static int do_del(struct event_loop *loop, int fd)
{
	struct watch **link = &loop->watches;
	struct watch *w;
	int ret = 0;

	while (*link && (*link)->fd != fd)
		link = &(*link)->next;
	w = *link;
	if (!w)
		return -ENOENT;
	*link = w->next;
	/* An fd closed before it was deleted has already left the epoll set (EBADF); the watch
	 * goes all the same, so its callback cannot run again. */
	if (epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL) < 0 && errno != EBADF)
		ret = -errno;
	if (loop->dispatching) {
		w->deleted = true;
		w->next = loop->graveyard;
		loop->graveyard = w;
	} else {
		free(w);
	}
	return ret;
}

static void wake(struct event_loop *loop)
{
	/* Cannot fail short of a counter overflow, which needs 2^64 wakeups nobody consumed. */
	if (eventfd_write(loop->wakefd, 1) < 0)
		log_error("event loop %s: wakeup: %s", loop->name, strerror(errno));
}

/* Queues `req` for the loop thread and sleeps until it has been carried out. */
static int submit(struct event_loop *loop, struct request *req)
{
	pthread_mutex_lock(&loop->lock);
	if (loop->stopped) {
		pthread_mutex_unlock(&loop->lock);
		return -ESHUTDOWN;
	}
	req->done = false;
	req->next = NULL;
	if (loop->queue_tail)
		loop->queue_tail->next = req;
	else
		loop->queue_head = req;
	loop->queue_tail = req;
	wake(loop);
	while (!req->done)
		pthread_cond_wait(&loop->done, &loop->lock);
	pthread_mutex_unlock(&loop->lock);
	return req->result;
}

static int run_request(struct event_loop *loop, struct request *req)
{
	switch (req->op) {
	case REQ_ADD:
		return do_add(loop, req->fd, req->events, req->fn, req->ctx);
	case REQ_MOD:
		return do_mod(loop, req->fd, req->events);
	case REQ_DEL:
		return do_del(loop, req->fd);
	case REQ_CALL:
		req->call(req->arg);
		return 0;
	case REQ_HOLD:
		loop->held = req->events != 0;
		return 0;
	}
	return -EINVAL;
}

static void complete(struct event_loop *loop, struct request *req, int result)
{
	pthread_mutex_lock(&loop->lock);
	req->result = result;
	req->done = true; /* from here on `req` belongs to its submitter again */
	pthread_cond_broadcast(&loop->done);
	pthread_mutex_unlock(&loop->lock);
}

/* Carries out every queued request. Returns true when the loop must stop. */
static bool run_requests(struct event_loop *loop)
{
	uint64_t count;
	bool stop;

	if (read(loop->wakefd, &count, sizeof(count)) < 0 && errno != EAGAIN)
		log_error("event loop %s: wakeup read: %s", loop->name, strerror(errno));
	for (;;) {
		struct request *req;

		pthread_mutex_lock(&loop->lock);
		req = loop->queue_head;
		if (req) {
			loop->queue_head = req->next;
			if (!loop->queue_head)
				loop->queue_tail = NULL;
		}
		stop = loop->stop;
		pthread_mutex_unlock(&loop->lock);
		if (!req)
			break;
		complete(loop, req, run_request(loop, req));
	}
	return stop;
}

static void *loop_thread(void *arg)
{
	struct event_loop *loop = arg;
	struct epoll_event events[EVENTS_PER_WAIT];
	bool stop = false;

	current_loop = loop;
	while (!stop) {
		/* Held: only the wakeup eventfd is waited on, the watched fds' events stay pending. */
		int n = epoll_wait(loop->held ? loop->holdfd : loop->epfd, events, EVENTS_PER_WAIT,
				   -1);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			log_error("event loop %s: epoll_wait: %s", loop->name, strerror(errno));
			break;
		}
		loop->dispatching = true;
		for (int i = 0; i < n; i++) {
			struct watch *w = events[i].data.ptr;

			if (events[i].data.ptr == &wake_marker)
				stop |= run_requests(loop);
			/* Held by a request or a callback earlier in the batch: the rest of the
			 * batch is dropped; level-triggered, it fires again at the release. */
			else if (!w->deleted && !loop->held)
				w->fn(w->ctx, events[i].events);
		}
		loop->dispatching = false;
		while (loop->graveyard) {
			struct watch *w = loop->graveyard;

			loop->graveyard = w->next;
			free(w);
		}
	}

	/* Requests that raced with the stop fail instead of waiting forever. */
	pthread_mutex_lock(&loop->lock);
	loop->stopped = true;
	for (struct request *req = loop->queue_head; req; req = req->next) {
		req->result = -ESHUTDOWN;
		req->done = true;
	}
	loop->queue_head = loop->queue_tail = NULL;
	pthread_cond_broadcast(&loop->done);
	pthread_mutex_unlock(&loop->lock);
	current_loop = NULL;
	return NULL;
}

struct event_loop *event_loop_create(const char *name)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &wake_marker };
	struct event_loop *loop = calloc(1, sizeof(*loop));
	int err;

	if (!loop) {
		log_error("event loop %s: out of memory", name);
		return NULL;
	}
	snprintf(loop->name, sizeof(loop->name), "%s", name);
	loop->epfd = epoll_create1(EPOLL_CLOEXEC);
	loop->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	loop->holdfd = epoll_create1(EPOLL_CLOEXEC);
	if (loop->epfd < 0 || loop->wakefd < 0 || loop->holdfd < 0 ||
	    epoll_ctl(loop->epfd, EPOLL_CTL_ADD, loop->wakefd, &ev) < 0 ||
	    epoll_ctl(loop->holdfd, EPOLL_CTL_ADD, loop->wakefd, &ev) < 0) {
		log_error("event loop %s: %s", loop->name, strerror(errno));
		goto fail;
	}
	pthread_mutex_init(&loop->lock, NULL);
	pthread_cond_init(&loop->done, NULL);

	/* A device worker: it starts with every signal blocked (base/thread.h). */
	err = thread_start(THREAD_DEVICE_WORKER, loop->name, loop_thread, loop, &loop->thread);
	if (err) {
		log_error("event loop %s: cannot start its thread: %s", loop->name, strerror(-err));
		pthread_mutex_destroy(&loop->lock);
		pthread_cond_destroy(&loop->done);
		goto fail;
	}
	return loop;

fail:
	if (loop->holdfd >= 0)
		close(loop->holdfd);
	if (loop->wakefd >= 0)
		close(loop->wakefd);
	if (loop->epfd >= 0)
		close(loop->epfd);
	free(loop);
	return NULL;
}

void event_loop_destroy(struct event_loop *loop)
{
	if (!loop)
		return;
	if (event_loop_on_thread(loop)) {
		/* Joining itself would deadlock: a bug in the caller, not a guest's doing. */
		log_error("event loop %s: destroyed from its own thread", loop->name);
		abort();
	}
	pthread_mutex_lock(&loop->lock);
	loop->stop = true;
	wake(loop);
	pthread_mutex_unlock(&loop->lock);
	pthread_join(loop->thread, NULL);

	while (loop->watches) {
		struct watch *w = loop->watches;

		loop->watches = w->next;
		free(w);
	}
	close(loop->holdfd);
	close(loop->wakefd);
	close(loop->epfd);
	pthread_mutex_destroy(&loop->lock);
	pthread_cond_destroy(&loop->done);
	free(loop);
}

int event_loop_add(struct event_loop *loop, int fd, uint32_t events, event_fn fn, void *ctx)
{
	struct request req = { .op = REQ_ADD, .fd = fd, .events = events, .fn = fn, .ctx = ctx };

	if (event_loop_on_thread(loop))
		return do_add(loop, fd, events, fn, ctx);
	return submit(loop, &req);
}

int event_loop_mod(struct event_loop *loop, int fd, uint32_t events)
{
	struct request req = { .op = REQ_MOD, .fd = fd, .events = events };

	if (event_loop_on_thread(loop))
		return do_mod(loop, fd, events);
	return submit(loop, &req);
}

int event_loop_del(struct event_loop *loop, int fd)
{
	struct request req = { .op = REQ_DEL, .fd = fd };

	if (event_loop_on_thread(loop))
		return do_del(loop, fd);
	return submit(loop, &req);
}

int event_loop_call(struct event_loop *loop, void (*fn)(void *arg), void *arg)
{
	struct request req = { .op = REQ_CALL, .call = fn, .arg = arg };

	if (event_loop_on_thread(loop)) {
		fn(arg);
		return 0;
	}
	return submit(loop, &req);
}

int event_loop_hold(struct event_loop *loop, bool held)
{
	struct request req = { .op = REQ_HOLD, .events = held };

	if (event_loop_on_thread(loop)) {
		loop->held = held;
		return 0;
	}
	return submit(loop, &req);
}
