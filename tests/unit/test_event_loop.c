/* The device worker loop: callbacks run on the loop's own named thread with every signal blocked;
 * add/mod/del/call from another thread are carried out on the loop thread and return once done;
 * after event_loop_del() returns the callback never runs again, even when it was running at that
 * moment or its event was already fetched in the same batch; a held loop runs requests but no
 * callback, and its events fire at the release (even those of the batch it was held in); destroy
 * stops the thread, held or not. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/event_loop.h"

#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

static void sleep_ms(int ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* Waits at most 5 s for `sem`; a callback that never comes fails the test instead of hanging. */
static void wait_sem(sem_t *sem)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 5;
	assert_int_equal(sem_timedwait(sem, &ts), 0);
}

static void kick(int fd)
{
	uint64_t one = 1;

	assert_int_equal(write(fd, &one, sizeof(one)), sizeof(one));
}

struct watcher {
	struct event_loop *loop;
	int fd;
	bool drain;		  /* read the eventfd in the callback */
	int sleep_ms;		  /* stay inside the callback this long */
	atomic_int calls;
	atomic_bool inside;
	uint64_t total;		  /* eventfd counts read */
	bool on_thread;
	char thread_name[16];
	sigset_t mask;
	sem_t called;
};

static void watcher_init(struct watcher *w, struct event_loop *loop)
{
	memset(w, 0, sizeof(*w));
	w->loop = loop;
	w->fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	assert_true(w->fd >= 0);
	w->drain = true;
	sem_init(&w->called, 0, 0);
}

static void watcher_fini(struct watcher *w)
{
	close(w->fd);
	sem_destroy(&w->called);
}

static void watcher_cb(void *ctx, uint32_t events)
{
	struct watcher *w = ctx;
	uint64_t count;

	atomic_store(&w->inside, true);
	w->on_thread = event_loop_on_thread(w->loop);
	pthread_getname_np(pthread_self(), w->thread_name, sizeof(w->thread_name));
	pthread_sigmask(SIG_BLOCK, NULL, &w->mask);
	if (w->drain && read(w->fd, &count, sizeof(count)) == sizeof(count))
		w->total += count;
	if (w->sleep_ms)
		sleep_ms(w->sleep_ms);
	atomic_fetch_add(&w->calls, 1);
	atomic_store(&w->inside, false);
	sem_post(&w->called);
}

static void test_callback_runs_on_named_thread_with_signals_blocked(void **state)
{
	struct event_loop *loop = event_loop_create("vio-test-name");
	struct watcher w;
	int calls;

	assert_non_null(loop);
	watcher_init(&w, loop);
	assert_false(event_loop_on_thread(loop));
	assert_int_equal(event_loop_add(loop, w.fd, EPOLLIN, watcher_cb, &w), 0);
	kick(w.fd);
	wait_sem(&w.called);
	assert_int_equal(w.total, 1);
	assert_true(w.on_thread);
	assert_string_equal(w.thread_name, "vio-test-name");
	assert_true(sigismember(&w.mask, SIGINT));
	assert_true(sigismember(&w.mask, SIGTERM));
	assert_true(sigismember(&w.mask, SIGUSR1));
	assert_true(sigismember(&w.mask, SIGCHLD));

	/* Level-triggered: the next write is seen again; nothing arrives without one. */
	kick(w.fd);
	kick(w.fd);
	do
		wait_sem(&w.called);
	while (w.total < 3);
	assert_int_equal(w.total, 3);
	calls = atomic_load(&w.calls);
	sleep_ms(20);
	assert_int_equal(atomic_load(&w.calls), calls);

	assert_int_equal(event_loop_del(loop, w.fd), 0);
	event_loop_destroy(loop);
	watcher_fini(&w);
}

static void test_add_mod_del_errors(void **state)
{
	struct event_loop *loop = event_loop_create("vio-errors");
	struct watcher w;

	watcher_init(&w, loop);
	assert_int_equal(event_loop_add(loop, w.fd, EPOLLIN, watcher_cb, &w), 0);
	assert_int_equal(event_loop_add(loop, w.fd, EPOLLIN, watcher_cb, &w), -EEXIST);
	assert_int_equal(event_loop_add(loop, -1, EPOLLIN, watcher_cb, &w), -EBADF);
	assert_int_equal(event_loop_mod(loop, w.fd + 100, EPOLLIN), -ENOENT);
	assert_int_equal(event_loop_del(loop, w.fd + 100), -ENOENT);

	/* Unwatching EPOLLIN silences a readable fd; watching it again brings the callback back. */
	w.drain = false;
	assert_int_equal(event_loop_mod(loop, w.fd, 0), 0);
	kick(w.fd);
	sleep_ms(30);
	assert_int_equal(atomic_load(&w.calls), 0);
	w.drain = true;
	assert_int_equal(event_loop_mod(loop, w.fd, EPOLLIN), 0);
	wait_sem(&w.called);
	assert_int_equal(w.total, 1);

	assert_int_equal(event_loop_del(loop, w.fd), 0);
	assert_int_equal(event_loop_del(loop, w.fd), -ENOENT);
	/* The same fd can be watched again after its deletion. */
	assert_int_equal(event_loop_add(loop, w.fd, EPOLLIN, watcher_cb, &w), 0);
	event_loop_destroy(loop);
	watcher_fini(&w);
}

struct call_arg {
	struct event_loop *loop;
	bool ran, on_thread, nested_ran;
};

static void nested_fn(void *p)
{
	struct call_arg *a = p;

	a->nested_ran = true;
}

static void call_fn(void *p)
{
	struct call_arg *a = p;

	sleep_ms(30); /* the caller must really wait for us */
	a->on_thread = event_loop_on_thread(a->loop);
	/* From the loop thread, call runs the function directly instead of deadlocking. */
	assert_int_equal(event_loop_call(a->loop, nested_fn, a), 0);
	a->ran = true;
}

static void test_call_waits_for_the_loop_thread(void **state)
{
	struct event_loop *loop = event_loop_create("vio-call");
	struct call_arg a = { .loop = loop };

	assert_int_equal(event_loop_call(loop, call_fn, &a), 0);
	assert_true(a.ran);
	assert_true(a.on_thread);
	assert_true(a.nested_ran);
	event_loop_destroy(loop);
}

struct del_thread_arg {
	struct event_loop *loop;
	struct watcher *w;
	int result;
	bool inside_after_del;
};

static void *del_thread(void *p)
{
	struct del_thread_arg *a = p;

	a->result = event_loop_del(a->loop, a->w->fd);
	a->inside_after_del = atomic_load(&a->w->inside);
	return NULL;
}

static void test_del_waits_for_a_running_callback(void **state)
{
	struct event_loop *loop = event_loop_create("vio-del");
	struct watcher w;
	struct del_thread_arg a = { .loop = loop, .w = &w };
	pthread_t t;
	int calls;

	watcher_init(&w, loop);
	w.drain = false; /* stays readable: the callback would run again and again */
	w.sleep_ms = 50;
	assert_int_equal(event_loop_add(loop, w.fd, EPOLLIN, watcher_cb, &w), 0);
	kick(w.fd);
	while (!atomic_load(&w.inside))
		sleep_ms(1);
	/* Deleting from another thread while the callback runs: del returns after it ended. */
	assert_int_equal(pthread_create(&t, NULL, del_thread, &a), 0);
	pthread_join(t, NULL);
	assert_int_equal(a.result, 0);
	assert_false(a.inside_after_del);

	calls = atomic_load(&w.calls);
	kick(w.fd);
	sleep_ms(120);
	assert_int_equal(atomic_load(&w.calls), calls);
	event_loop_destroy(loop);
	watcher_fini(&w);
}

/* Two fds in the same batch, each callback deleting the other: only the first may run. */
struct pair {
	struct event_loop *loop;
	int fd[2];
	atomic_int calls[2];
	int del_result[2];
};

static void pair_cb(int self, struct pair *p)
{
	atomic_fetch_add(&p->calls[self], 1);
	p->del_result[self] = event_loop_del(p->loop, p->fd[!self]);
	event_loop_del(p->loop, p->fd[self]);
}

static void pair_cb0(void *ctx, uint32_t events)
{
	pair_cb(0, ctx);
}

static void pair_cb1(void *ctx, uint32_t events)
{
	pair_cb(1, ctx);
}

static void kick_both(void *ctx)
{
	struct pair *p = ctx;

	/* On the loop thread, so both are ready when it next waits: one batch. */
	kick(p->fd[0]);
	kick(p->fd[1]);
}

static void noop(void *ctx)
{
}

static void test_deleted_in_the_same_batch_is_not_dispatched(void **state)
{
	struct event_loop *loop = event_loop_create("vio-batch");
	struct pair p = { .loop = loop };

	for (int round = 0; round < 50; round++) {
		p.fd[0] = eventfd(0, EFD_NONBLOCK);
		p.fd[1] = eventfd(0, EFD_NONBLOCK);
		atomic_store(&p.calls[0], 0);
		atomic_store(&p.calls[1], 0);
		assert_int_equal(event_loop_add(loop, p.fd[0], EPOLLIN, pair_cb0, &p), 0);
		assert_int_equal(event_loop_add(loop, p.fd[1], EPOLLIN, pair_cb1, &p), 0);
		assert_int_equal(event_loop_call(loop, kick_both, &p), 0);
		/* Wait until one ran (it removes both watches). */
		for (int i = 0; i < 5000 && !atomic_load(&p.calls[0]) && !atomic_load(&p.calls[1]);
		     i++)
			sleep_ms(1);
		event_loop_call(loop, noop, NULL);
		assert_int_equal(atomic_load(&p.calls[0]) + atomic_load(&p.calls[1]), 1);
		assert_int_equal(p.del_result[atomic_load(&p.calls[1])], 0);
		/* Both watches are gone. */
		assert_int_equal(event_loop_del(loop, p.fd[0]), -ENOENT);
		assert_int_equal(event_loop_del(loop, p.fd[1]), -ENOENT);
		close(p.fd[0]);
		close(p.fd[1]);
	}
	event_loop_destroy(loop);
}

/* While held: no callback, whatever is ready; requests run; at the release the event fires. */
static void test_hold_defers_callbacks(void **state)
{
	struct event_loop *loop = event_loop_create("vio-hold");
	struct call_arg a = { .loop = loop };
	struct watcher w, w2;

	watcher_init(&w, loop);
	watcher_init(&w2, loop);
	assert_int_equal(event_loop_add(loop, w.fd, EPOLLIN | EPOLLET, watcher_cb, &w), -EINVAL);
	assert_int_equal(event_loop_add(loop, w.fd, EPOLLIN, watcher_cb, &w), 0);
	assert_int_equal(event_loop_hold(loop, true), 0);
	kick(w.fd);
	sleep_ms(50);
	assert_int_equal(atomic_load(&w.calls), 0);
	/* Requests go on: a call, and a watch added now waits as the others do. */
	assert_int_equal(event_loop_call(loop, call_fn, &a), 0);
	assert_true(a.ran && a.on_thread);
	assert_int_equal(event_loop_add(loop, w2.fd, EPOLLIN, watcher_cb, &w2), 0);
	kick(w2.fd);
	sleep_ms(50);
	assert_int_equal(atomic_load(&w.calls) + atomic_load(&w2.calls), 0);
	assert_int_equal(event_loop_hold(loop, false), 0);
	wait_sem(&w.called);
	wait_sem(&w2.called);
	assert_int_equal(w.total, 1);
	assert_int_equal(w2.total, 1);

	/* Held again, then destroyed without a release: the thread still ends. */
	assert_int_equal(event_loop_hold(loop, true), 0);
	kick(w.fd);
	event_loop_destroy(loop);
	assert_int_equal(atomic_load(&w.calls), 1);
	watcher_fini(&w);
	watcher_fini(&w2);
}

/* A callback that holds its own loop: the rest of its batch waits for the release. */
struct holder {
	struct event_loop *loop;
	int fd[2];
	atomic_int calls[2];
};

static void holder_cb(int self, struct holder *h)
{
	uint64_t count;

	if (read(h->fd[self], &count, sizeof(count)) < 0)
		return;
	atomic_fetch_add(&h->calls[self], 1);
	if (atomic_load(&h->calls[0]) + atomic_load(&h->calls[1]) == 1)
		assert_int_equal(event_loop_hold(h->loop, true), 0);
}

static void holder_cb0(void *ctx, uint32_t events)
{
	holder_cb(0, ctx);
}

static void holder_cb1(void *ctx, uint32_t events)
{
	holder_cb(1, ctx);
}

static void kick_holder(void *ctx)
{
	struct holder *h = ctx;

	kick(h->fd[0]);
	kick(h->fd[1]);
}

static void test_hold_from_a_callback(void **state)
{
	struct event_loop *loop = event_loop_create("vio-hold-cb");
	struct holder h = { .loop = loop };

	h.fd[0] = eventfd(0, EFD_NONBLOCK);
	h.fd[1] = eventfd(0, EFD_NONBLOCK);
	assert_int_equal(event_loop_add(loop, h.fd[0], EPOLLIN, holder_cb0, &h), 0);
	assert_int_equal(event_loop_add(loop, h.fd[1], EPOLLIN, holder_cb1, &h), 0);
	assert_int_equal(event_loop_call(loop, kick_holder, &h), 0);
	for (int i = 0; i < 5000 && !atomic_load(&h.calls[0]) && !atomic_load(&h.calls[1]); i++)
		sleep_ms(1);
	sleep_ms(50);
	assert_int_equal(atomic_load(&h.calls[0]) + atomic_load(&h.calls[1]), 1);
	assert_int_equal(event_loop_hold(loop, false), 0);
	for (int i = 0; i < 5000 && atomic_load(&h.calls[0]) + atomic_load(&h.calls[1]) < 2; i++)
		sleep_ms(1);
	assert_int_equal(atomic_load(&h.calls[0]), 1);
	assert_int_equal(atomic_load(&h.calls[1]), 1);
	event_loop_destroy(loop);
	close(h.fd[0]);
	close(h.fd[1]);
}

struct hammer_arg {
	struct event_loop *loop;
	int n;
	atomic_int *counter;
};

static void count_fn(void *p)
{
	atomic_fetch_add((atomic_int *)p, 1);
}

static void *hammer(void *p)
{
	struct hammer_arg *a = p;

	for (int i = 0; i < a->n; i++)
		assert_int_equal(event_loop_call(a->loop, count_fn, a->counter), 0);
	return NULL;
}

static void test_many_threads_calling(void **state)
{
	struct event_loop *loop = event_loop_create("vio-hammer");
	atomic_int counter = 0;
	struct hammer_arg a = { .loop = loop, .n = 2000, .counter = &counter };
	pthread_t t[4];

	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&t[i], NULL, hammer, &a), 0);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(atomic_load(&counter), 8000);
	event_loop_destroy(loop);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_callback_runs_on_named_thread_with_signals_blocked),
		cmocka_unit_test(test_add_mod_del_errors),
		cmocka_unit_test(test_call_waits_for_the_loop_thread),
		cmocka_unit_test(test_del_waits_for_a_running_callback),
		cmocka_unit_test(test_deleted_in_the_same_batch_is_not_dispatched),
		cmocka_unit_test(test_many_threads_calling),
		cmocka_unit_test(test_hold_defers_callbacks),
		cmocka_unit_test(test_hold_from_a_callback),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
