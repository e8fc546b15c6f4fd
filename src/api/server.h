/* The API server: a UNIX stream socket served by one thread of its own. Requests are handled one
 * at a time, in arrival order, by a single handler: concurrent clients cannot interleave their
 * changes. A client that stalls (connects and sends nothing, or a request half-way) is dropped
 * after a bounded idle time; the number of clients is bounded too. */
#ifndef SKIFF_API_SERVER_H
#define SKIFF_API_SERVER_H

#include "api/http.h"

/* Called on the server thread for each complete request; fills `resp`. */
typedef void (*api_handler_fn)(void *ctx, const struct http_request *req,
			       struct http_response *resp);

struct api_server;

/* Binds and listens on `path` (a stale socket file nobody listens on is replaced; anything else
 * there is an error) and starts the server thread. Returns 0 with *out set, or -errno after one
 * logged line naming the path. */
int api_server_start(struct api_server **out, const char *path, api_handler_fn handler,
		     void *ctx);

/* Stops the thread (a request being handled completes first), closes every client and removes
 * the socket file. */
void api_server_stop(struct api_server *srv);

/* Knobs with their defaults; tests shorten the idle time. A zero field takes the default. */
struct api_server_options {
	int idle_timeout_ms; /* default 10000: a client without progress this long is dropped */
	int max_clients;     /* default 32: clients beyond get a 503 and are closed */
};

int api_server_start_opts(struct api_server **out, const char *path, api_handler_fn handler,
			  void *ctx, const struct api_server_options *opts);

/* {"fault_message": message} as a malloc'd JSON string (never NULL unless out of memory). */
char *api_fault_body(const char *message);

#endif
