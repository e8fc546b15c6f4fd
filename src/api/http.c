/* HTTP/1.1 request parsing and response formatting for the API socket (see http.h). The request
 * line is checked as its bytes arrive, so garbage is refused at once rather than after the head
 * limit; headers are parsed when the blank line ending the head has arrived. */
#include "api/http.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define HTTP_BUF_SIZE (HTTP_MAX_HEAD + HTTP_MAX_BODY)
/* Content-Length values are saturated here: anything this large is refused with 413 anyway. */
#define CONTENT_LENGTH_CAP 1000000000000ULL

const char http_continue[] = "HTTP/1.1 100 Continue\r\n\r\n";

static const struct {
	int status;
	const char *reason;
} reasons[] = {
	{ 100, "Continue" },
	{ 200, "OK" },
	{ 201, "Created" },
	{ 202, "Accepted" },
	{ 204, "No Content" },
	{ 400, "Bad Request" },
	{ 403, "Forbidden" },
	{ 404, "Not Found" },
	{ 405, "Method Not Allowed" },
	{ 408, "Request Timeout" },
	{ 409, "Conflict" },
	{ 411, "Length Required" },
	{ 413, "Payload Too Large" },
	{ 414, "URI Too Long" },
	{ 415, "Unsupported Media Type" },
	{ 417, "Expectation Failed" },
	{ 431, "Request Header Fields Too Large" },
	{ 500, "Internal Server Error" },
	{ 501, "Not Implemented" },
	{ 503, "Service Unavailable" },
	{ 505, "HTTP Version Not Supported" },
};

const char *http_status_reason(int status)
{
	for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
		if (reasons[i].status == status)
			return reasons[i].reason;
	if (status >= 200 && status < 300)
		return "Success";
	if (status >= 400 && status < 500)
		return "Client Error";
	return "Server Error";
}

int http_parser_init(struct http_parser *p)
{
	memset(p, 0, sizeof(*p));
	p->buf = malloc(HTTP_BUF_SIZE);
	p->body = malloc(HTTP_MAX_BODY + 1);
	if (!p->buf || !p->body) {
		http_parser_fini(p);
		return -ENOMEM;
	}
	return 0;
}

void http_parser_fini(struct http_parser *p)
{
	free(p->buf);
	free(p->body);
	p->buf = NULL;
	p->body = NULL;
}

static void drop_done(struct http_parser *p)
{
	if (!p->done)
		return;
	memmove(p->buf, p->buf + p->done, p->len - p->done);
	p->len -= p->done;
	p->done = 0;
}

char *http_parser_space(struct http_parser *p, size_t *room)
{
	drop_done(p);
	*room = HTTP_BUF_SIZE - p->len;
	return p->buf + p->len;
}

void http_parser_commit(struct http_parser *p, size_t n)
{
	p->len += n;
}

size_t http_parser_feed(struct http_parser *p, const void *data, size_t len)
{
	size_t room;
	char *dst = http_parser_space(p, &room);

	if (len > room)
		len = room;
	memcpy(dst, data, len);
	http_parser_commit(p, len);
	return len;
}

bool http_parser_partial(const struct http_parser *p)
{
	return p->len > p->done;
}

static enum http_parse_status fail(struct http_parser *p, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static enum http_parse_status fail(struct http_parser *p, int status, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(p->error_message, sizeof(p->error_message), fmt, ap);
	va_end(ap);
	p->error_status = status;
	return HTTP_PARSE_ERROR;
}

/* RFC 9110 tchar: the characters of a method or a header name. */
static bool is_tchar(unsigned char c)
{
	if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
		return true;
	return c && strchr("!#$%&'*+-.^_`|~", c);
}

static bool is_ctl(unsigned char c)
{
	return c < 0x20 || c == 0x7f;
}

static bool token_is(const char *s, size_t n, const char *word)
{
	return strlen(word) == n && strncasecmp(s, word, n) == 0;
}

/* The request line without its CRLF; the method's end (p->method_end) is known already. */
static enum http_parse_status parse_request_line(struct http_parser *p, const char *line,
						 size_t n)
{
	struct http_request *req = &p->req;
	size_t mlen = p->method_end;
	const char *target = line + mlen + 1, *version, *end = line + n;
	const char *sp = memchr(target, ' ', end - target);
	size_t tlen, plen;

	memcpy(req->method_name, line, mlen);
	req->method_name[mlen] = '\0';
	if (strcmp(req->method_name, "GET") == 0)
		req->method = HTTP_GET;
	else if (strcmp(req->method_name, "PUT") == 0)
		req->method = HTTP_PUT;
	else if (strcmp(req->method_name, "PATCH") == 0)
		req->method = HTTP_PATCH;
	else
		req->method = HTTP_OTHER;

	if (!sp || sp == target)
		return fail(p, 400, "malformed request line: expected METHOD SP target SP version");
	tlen = sp - target;
	version = sp + 1;
	if ((size_t)(end - version) == 8 && memcmp(version, "HTTP/1.", 7) == 0 &&
	    (version[7] == '0' || version[7] == '1')) {
		p->minor = version[7] - '0';
	} else if ((size_t)(end - version) == 8 && memcmp(version, "HTTP/", 5) == 0 &&
		   version[5] >= '0' && version[5] <= '9' && version[6] == '.' &&
		   version[7] >= '0' && version[7] <= '9') {
		return fail(p, 505, "HTTP version %.8s is not supported: use HTTP/1.1", version);
	} else {
		return fail(p, 400, "malformed request line: bad HTTP version");
	}

	for (size_t i = 0; i < tlen; i++) {
		unsigned char c = target[i];

		if (is_ctl(c) || c == ' ' || c >= 0x80)
			return fail(p, 400,
				    "the request target has a control or non-ASCII character");
	}
	if (target[0] != '/')
		return fail(p, 400, "the request target must be a path starting with '/'");
	for (plen = 0; plen < tlen && target[plen] != '?' && target[plen] != '#'; plen++)
		;
	if (plen >= HTTP_MAX_PATH)
		return fail(p, 414, "the request path is longer than %d bytes", HTTP_MAX_PATH - 1);
	memcpy(req->path, target, plen);
	req->path[plen] = '\0';
	return HTTP_PARSE_INCOMPLETE;
}

/* Checks the request line byte by byte as it arrives (from p->scanned), and parses it once its
 * CRLF is in. */
static enum http_parse_status check_request_line(struct http_parser *p, size_t i)
{
	unsigned char c = p->buf[i];

	if (i > 0 && p->buf[i - 1] == '\r' && c != '\n')
		return fail(p, 400, "malformed request line: CR without LF");
	if (c == '\n') {
		if (i == 0 || p->buf[i - 1] != '\r')
			return fail(p, 400, "malformed request line: LF without CR");
		if (!p->method_end)
			return fail(p, 400, "malformed request line: expected METHOD SP target SP "
					    "version");
		p->line_end = i;
		return parse_request_line(p, p->buf, i - 1);
	}
	if (!p->method_end) {
		if (c == ' ' && i > 0) {
			p->method_end = i;
			return HTTP_PARSE_INCOMPLETE;
		}
		if (!is_tchar(c))
			return fail(p, 400, "malformed request line: bad method");
		if (i >= sizeof(p->req.method_name) - 1)
			return fail(p, 400, "malformed request line: method too long");
		return HTTP_PARSE_INCOMPLETE;
	}
	if (c != '\r' && is_ctl(c))
		return fail(p, 400, "the request line has a control character");
	return HTTP_PARSE_INCOMPLETE;
}

/* A header value for an error message: as sent, or its start and "..." when it is too long. */
static void quote_value(char out[HTTP_QUOTE_MAX], const char *v, size_t n)
{
	if (n < HTTP_QUOTE_MAX)
		snprintf(out, HTTP_QUOTE_MAX, "%.*s", (int)n, v);
	else
		snprintf(out, HTTP_QUOTE_MAX, "%.*s...", HTTP_QUOTE_MAX - 4, v);
}

static enum http_parse_status content_length(struct http_parser *p, const char *v, size_t n)
{
	unsigned long long value = 0;
	char text[HTTP_QUOTE_MAX];

	if (n == 0)
		return fail(p, 400, "Content-Length is empty");
	for (size_t i = 0; i < n; i++) {
		if (v[i] < '0' || v[i] > '9')
			return fail(p, 400, "Content-Length is not a plain decimal number");
		value = value * 10 + (v[i] - '0');
		if (value > CONTENT_LENGTH_CAP)
			value = CONTENT_LENGTH_CAP;
	}
	/* Values beyond the cap are compared as sent (without leading zeros), not as saturated. */
	while (n > 1 && v[0] == '0')
		v++, n--;
	quote_value(text, v, n);
	if (p->has_length && (p->length_value != value || strcmp(p->length_text, text) != 0))
		return fail(p, 400, "conflicting Content-Length headers");
	p->has_length = true;
	p->length_value = value;
	memcpy(p->length_text, text, sizeof(text));
	return HTTP_PARSE_INCOMPLETE;
}

/* Transfer-Encoding: a list of codings, each maybe with parameters. Only the last one named (in
 * the last header) decides how the body is framed (RFC 9112 6.3). */
static enum http_parse_status transfer_encoding(struct http_parser *p, const char *v, size_t n)
{
	bool any = false;
	size_t i = 0;

	while (i < n) {
		size_t start, end;

		while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
			i++;
		if (i == n)
			break;
		start = i;
		while (i < n && v[i] != ',' && v[i] != ';')
			i++;
		end = i;
		while (i < n && v[i] != ',')
			i++; /* the coding's parameters */
		while (end > start && (v[end - 1] == ' ' || v[end - 1] == '\t'))
			end--;
		quote_value(p->last_coding, v + start, end - start);
		any = true;
	}
	if (!any)
		return fail(p, 400, "Transfer-Encoding names no transfer coding");
	p->has_transfer_encoding = true;
	return HTTP_PARSE_INCOMPLETE;
}

static void connection_tokens(struct http_parser *p, const char *v, size_t n)
{
	size_t i = 0;

	while (i < n) {
		size_t start, end;

		while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
			i++;
		start = i;
		while (i < n && v[i] != ',')
			i++;
		end = i;
		while (end > start && (v[end - 1] == ' ' || v[end - 1] == '\t'))
			end--;
		if (token_is(v + start, end - start, "close"))
			p->conn_close = true;
		else if (token_is(v + start, end - start, "keep-alive"))
			p->conn_keep_alive = true;
	}
}

static enum http_parse_status header(struct http_parser *p, const char *line, size_t n)
{
	const char *colon, *v;
	size_t nlen, vlen;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = line[i];

		if (c == '\r' || c == '\n')
			return fail(p, 400, "a header line has a bare CR or LF");
		if (is_ctl(c) && c != '\t')
			return fail(p, 400, "a header line has a control character");
	}
	if (line[0] == ' ' || line[0] == '\t')
		return fail(p, 400, "folded header lines are not accepted");
	colon = memchr(line, ':', n);
	if (!colon)
		return fail(p, 400, "a header line has no ':'");
	nlen = colon - line;
	if (nlen == 0)
		return fail(p, 400, "a header line has an empty name");
	for (size_t i = 0; i < nlen; i++)
		if (!is_tchar(line[i]))
			return fail(p, 400, "a header name has a character that is not allowed");
	v = colon + 1;
	vlen = line + n - v;
	while (vlen && (*v == ' ' || *v == '\t'))
		v++, vlen--;
	while (vlen && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
		vlen--;

	if (token_is(line, nlen, "Content-Length"))
		return content_length(p, v, vlen);
	if (token_is(line, nlen, "Transfer-Encoding"))
		return transfer_encoding(p, v, vlen);
	if (token_is(line, nlen, "Connection"))
		connection_tokens(p, v, vlen);
	else if (token_is(line, nlen, "Expect")) {
		if (!token_is(v, vlen, "100-continue"))
			return fail(p, 417, "only \"Expect: 100-continue\" is supported");
		p->expect_continue = true;
	}
	return HTTP_PARSE_INCOMPLETE;
}

/* The headers, after the request line, up to the blank line ending the head. */
static enum http_parse_status parse_headers(struct http_parser *p)
{
	size_t pos = p->line_end + 1, end = p->head_len - 2;
	enum http_parse_status st;

	while (pos < end) {
		const char *line = p->buf + pos;
		const char *crlf = memmem(line, end - pos, "\r\n", 2);
		size_t n = crlf - line; /* the head ends in CRLF CRLF: there is one */

		st = header(p, line, n);
		if (st != HTTP_PARSE_INCOMPLETE)
			return st;
		pos += n + 2;
	}

	/* RFC 9112 6.1 and 6.3: in HTTP/1.0, or without chunked last, a Transfer-Encoding leaves
	 * the body's end unknown (400, and the connection closes); chunked is valid HTTP/1.1 that
	 * skiff does not implement (501). Never is a body read by Content-Length instead. */
	if (p->has_transfer_encoding && p->minor == 0)
		return fail(p, 400, "Transfer-Encoding in an HTTP/1.0 request");
	if (p->has_transfer_encoding && strcasecmp(p->last_coding, "chunked") != 0)
		return fail(p, 400,
			    "Transfer-Encoding '%s' does not end in chunked: the body's "
			    "length is unknown",
			    p->last_coding);
	if (p->has_transfer_encoding)
		return fail(p, 501,
			    "Transfer-Encoding chunked is not supported: send the body "
			    "with a Content-Length");
	if (p->has_length && p->length_value > HTTP_MAX_BODY)
		return fail(p, 413, "the body (Content-Length %s) is larger than %d bytes",
			    p->length_text, HTTP_MAX_BODY);
	if (!p->has_length && (p->req.method == HTTP_PUT || p->req.method == HTTP_PATCH ||
			       strcmp(p->req.method_name, "POST") == 0))
		return fail(p, 411, "a %s request needs a Content-Length header",
			    p->req.method_name);
	p->content_length = p->has_length ? p->length_value : 0;
	if (p->conn_close)
		p->req.keep_alive = false;
	else
		p->req.keep_alive = p->minor == 1 || p->conn_keep_alive;
	/* RFC 9110: an HTTP/1.0 client's Expect is ignored; without a body, nothing to wait for. */
	p->expect_continue = p->expect_continue && p->minor == 1 && p->content_length > 0;
	return HTTP_PARSE_INCOMPLETE;
}

/* Forgets the head parsed; p->req stays, as the request yielded, until the next one. */
static void start_request(struct http_parser *p)
{
	p->scanned = 0;
	p->head_len = 0;
	p->line_end = 0;
	p->method_end = 0;
	p->content_length = 0;
	p->has_length = false;
	p->length_value = 0;
	p->length_text[0] = '\0';
	p->has_transfer_encoding = false;
	p->last_coding[0] = '\0';
	p->conn_close = false;
	p->conn_keep_alive = false;
	p->expect_continue = false;
	p->continue_sent = false;
}

/* Looks for the end of the head, checking the request line on the way. */
static enum http_parse_status find_head(struct http_parser *p)
{
	size_t limit = p->len < HTTP_MAX_HEAD ? p->len : HTTP_MAX_HEAD;
	enum http_parse_status st;

	if (p->scanned == 0) {
		/* RFC 9112 2.2: empty lines before a request line are ignored. */
		size_t skip = 0;

		while (skip + 1 < p->len && p->buf[skip] == '\r' && p->buf[skip + 1] == '\n')
			skip += 2;
		if (skip) {
			p->done = skip;
			drop_done(p);
			limit = p->len < HTTP_MAX_HEAD ? p->len : HTTP_MAX_HEAD;
		}
		if (p->len == 1 && p->buf[0] == '\r')
			return HTTP_PARSE_INCOMPLETE;
	}
	for (size_t i = p->scanned; i < limit; i++) {
		if (!p->line_end) {
			st = check_request_line(p, i);
			if (st != HTTP_PARSE_INCOMPLETE)
				return st;
		}
		if (i >= 3 && p->line_end && memcmp(p->buf + i - 3, "\r\n\r\n", 4) == 0) {
			p->head_len = i + 1;
			p->scanned = i + 1;
			return parse_headers(p);
		}
	}
	p->scanned = limit;
	if (p->len >= HTTP_MAX_HEAD)
		return fail(p, 431, "the request line and headers are larger than %d bytes",
			    HTTP_MAX_HEAD);
	return HTTP_PARSE_INCOMPLETE;
}

enum http_parse_status http_parser_next(struct http_parser *p)
{
	enum http_parse_status st;
	size_t need;

	if (p->error_status)
		return HTTP_PARSE_ERROR;
	drop_done(p);
	if (!p->head_len) {
		st = find_head(p);
		if (st == HTTP_PARSE_ERROR)
			return st;
		if (!p->head_len)
			return HTTP_PARSE_INCOMPLETE;
	}
	need = p->head_len + p->content_length;
	if (p->len < need) {
		if (p->expect_continue && !p->continue_sent) {
			p->continue_sent = true;
			return HTTP_PARSE_CONTINUE;
		}
		return HTTP_PARSE_INCOMPLETE;
	}
	memcpy(p->body, p->buf + p->head_len, p->content_length);
	p->body[p->content_length] = '\0';
	p->req.body = p->body;
	p->req.body_len = p->content_length;
	p->done = need;
	start_request(p);
	return HTTP_PARSE_REQUEST;
}

size_t http_format_response(char *out, size_t size, int status, const char *body,
			    size_t body_len, bool close)
{
	bool may_have_body = status >= 200 && status != 204 && status != 304;
	char head[256];
	int n;

	if (!may_have_body || !body)
		body_len = 0;
	n = snprintf(head, sizeof(head), "HTTP/1.1 %d %s\r\n%s", status, http_status_reason(status),
		     body_len ? "Content-Type: application/json\r\n" : "");
	if (may_have_body)
		n += snprintf(head + n, sizeof(head) - n, "Content-Length: %zu\r\n", body_len);
	n += snprintf(head + n, sizeof(head) - n, "%s\r\n", close ? "Connection: close\r\n" : "");
	if ((size_t)n + body_len <= size) {
		memcpy(out, head, n);
		if (body_len)
			memcpy(out + n, body, body_len);
	}
	return n + body_len;
}
