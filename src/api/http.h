/* The subset of HTTP/1.1 the API socket speaks (RFC 9112): one request line, headers, and a body
 * framed by Content-Length; keep-alive and pipelining; "Expect: 100-continue". Everything a
 * client sends is bounded (request line, headers, body) and anything else is refused with a 4xx,
 * never a crash. The parser is incremental: bytes go in as they arrive from the socket. */
#ifndef SKIFF_API_HTTP_H
#define SKIFF_API_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#define HTTP_MAX_HEAD 8192	     /* request line and headers */
#define HTTP_MAX_BODY (50 * 1024) /* as Firecracker's API: 51200 bytes */
#define HTTP_MAX_PATH 1024

enum http_method {
	HTTP_GET,
	HTTP_PUT,
	HTTP_PATCH,
	HTTP_OTHER, /* a valid token skiff's API has no use for (POST, DELETE, ...) */
};

/* One complete request, as the server hands it to its handler. */
struct http_request {
	enum http_method method;
	char method_name[16];
	char path[HTTP_MAX_PATH]; /* the request target's path, without query */
	const char *body;	  /* NUL-terminated for convenience; body_len excludes the NUL */
	size_t body_len;
	bool keep_alive;
};

/* What the handler answers: a status and an optional JSON body (malloc'd; the server frees it).
 * 204 and 1xx carry no body. */
struct http_response {
	int status;
	char *body;
};

const char *http_status_reason(int status);

#endif
