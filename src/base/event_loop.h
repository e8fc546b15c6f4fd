/* A worker thread running an epoll loop: each virtio device has one, and everything the device
 * does (queue processing, backend I/O completions, tap and console readiness) runs there as
 * callbacks, so vCPU threads never do device work and a device's state needs no locks.
 *
 * Callbacks run on the loop thread. event_loop_add/mod/del and event_loop_call may be called from
 * any thread; from another thread they are carried out on the loop thread and return once done,
 * so after event_loop_del() returns, the callback is not running and will not run again. */
#ifndef SKIFF_EVENT_LOOP_H
#define SKIFF_EVENT_LOOP_H

#include <stdbool.h>
#include <stdint.h>

struct event_loop;

/* `events` is the EPOLLIN/EPOLLOUT/... mask that fired. */
typedef void (*event_fn)(void *ctx, uint32_t events);

/* Starts the loop thread, named `name` (shown by ps/top; at most 15 characters). NULL on failure
 * after a logged line. */
struct event_loop *event_loop_create(const char *name);
/* Stops and joins the thread and frees the loop; registered fds are not closed. */
void event_loop_destroy(struct event_loop *loop);

/* Watch `fd` for `events` (EPOLLIN, EPOLLOUT; level-triggered, EPOLLET is refused: an edge
 * that came during a hold would be lost). Returns 0 or -errno (-EEXIST if fd is already
 * watched). */
int event_loop_add(struct event_loop *loop, int fd, uint32_t events, event_fn fn, void *ctx);
int event_loop_mod(struct event_loop *loop, int fd, uint32_t events);
int event_loop_del(struct event_loop *loop, int fd);

/* Runs fn(arg) on the loop thread and waits for it to return (directly when called on the loop
 * thread). Returns 0, or -errno if the loop has stopped. */
int event_loop_call(struct event_loop *loop, void (*fn)(void *arg), void *arg);

/* Holds the loop (held true) or lets it go: while held, requests (add, mod, del, call) are
 * carried out as ever, but no watched fd's callback runs; their events wait and fire after the
 * release. Returns once the loop thread has taken it in, so no callback is running then (unless
 * called from one, where the rest of the batch waits). A device whose work all happens on its loop
 * writes no guest memory and raises no interrupt while held: how a snapshot or a migration's
 * handoff keeps the devices' state and guest memory in step. 0 or -ESHUTDOWN. */
int event_loop_hold(struct event_loop *loop, bool held);

/* True when called on the loop's own thread. */
bool event_loop_on_thread(const struct event_loop *loop);

#endif
