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
#define HTTP_QUOTE_MAX 32 /* bytes (with the NUL) of a header value quoted in an error message */

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

/* The incremental request parser. Bytes go in as they arrive (http_parser_space + commit, or
 * http_parser_feed); http_parser_next() then yields what they complete, one request at a time,
 * so pipelined requests come out in order. After HTTP_PARSE_ERROR the parser stays in error: the
 * connection answers error_status / error_message and closes. */
enum http_parse_status {
	HTTP_PARSE_INCOMPLETE, /* more bytes needed */
	HTTP_PARSE_CONTINUE,   /* head accepted with "Expect: 100-continue": send http_continue */
	HTTP_PARSE_REQUEST,    /* p->req holds a complete request, valid until the next call */
	HTTP_PARSE_ERROR,      /* p->error_status (4xx/5xx) and p->error_message */
};

struct http_parser {
	char *buf; /* HTTP_MAX_HEAD + HTTP_MAX_BODY bytes: one whole request fits */
	size_t len;	       /* bytes in buf */
	size_t done;	       /* bytes of the request last yielded, dropped on the next call */
	size_t scanned;	       /* bytes of the current head already checked/searched */
	size_t head_len;       /* 0 until the current request's head is parsed */
	size_t content_length;
	bool expect_continue;
	bool continue_sent;
	/* The current head, as far as it is parsed. */
	size_t line_end;   /* offset of the request line's LF, 0 until it has arrived */
	size_t method_end; /* offset of the SP after the method, 0 until it has arrived */
	int minor;	   /* HTTP/1.<minor> */
	bool has_length;
	unsigned long long length_value;  /* saturated: see length_text for what was sent */
	char length_text[HTTP_QUOTE_MAX]; /* the Content-Length as sent, shortened if very long */
	bool has_transfer_encoding;
	char last_coding[HTTP_QUOTE_MAX]; /* the last transfer coding named, shortened */
	bool conn_close;
	bool conn_keep_alive;
	char *body; /* HTTP_MAX_BODY + 1 bytes: the yielded request's body, NUL-terminated */
	struct http_request req;
	int error_status;
	char error_message[128];
};

extern const char http_continue[]; /* "HTTP/1.1 100 Continue\r\n\r\n" */

/* 0, or -ENOMEM. */
int http_parser_init(struct http_parser *p);
void http_parser_fini(struct http_parser *p);

/* Where the next bytes go and how many fit; read(2) there, then commit what was read. No room is
 * left only when a complete request is waiting to be taken by http_parser_next(). */
char *http_parser_space(struct http_parser *p, size_t *room);
void http_parser_commit(struct http_parser *p, size_t n);
/* Copies what fits of data (see http_parser_space); returns how many bytes were taken. */
size_t http_parser_feed(struct http_parser *p, const void *data, size_t len);

enum http_parse_status http_parser_next(struct http_parser *p);

/* True when bytes of a request not yet yielded are buffered (a client stopped half-way). */
bool http_parser_partial(const struct http_parser *p);

/* Formats a response head (and copies the body after it) into out, snprintf-like: returns the
 * length the whole response needs, and writes it only if it fits in `size`. The head has the
 * status line with its reason, Content-Type: application/json and Content-Length when there is a
 * body (Content-Length: 0 when a status that may carry one has none), and "Connection: close"
 * when `close`. 1xx, 204 and 304 never carry a body. */
size_t http_format_response(char *out, size_t size, int status, const char *body,
			    size_t body_len, bool close);

#endif
