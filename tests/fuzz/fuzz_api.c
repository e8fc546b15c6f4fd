/* The API's HTTP parser (src/api/http.c) and its request handler with JSON bodies
 * (src/api/routes.c, src/config/) on an instance that is never started, as the API server
 * drives them: bytes fed in pieces as they would arrive from the socket, every request the
 * parser yields handled and its response formatted, until the input ends or the parser refuses
 * (the error response is formatted too). The first input byte sets the piece size.
 *
 * What would leave the process is kept from happening, the rest is real: the logger is marked
 * configured and metrics go to /dev/null (so PUT /logger and PUT /metrics parse their bodies and
 * are then refused, instead of opening files the fuzzer names), and InstanceStart is answered
 * by the harness instead of building a VM on /dev/kvm. Each input gets a fresh instance.
 *
 * Besides the sanitizers, the answers are checked: a status the API documents (200, 204, 400,
 * or the parser's 4xx/5xx), and a body, when there is one, that is JSON (an object). */
#include "fuzz/input.h"
#include "api/http.h"
#include "api/routes.h"
#include "base/log.h"
#include "config/config_json.h"
#include "config/resource.h"
#include "vmm/instance.h"
#include "vmm/metrics.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static struct http_parser parser;
static struct metrics *metrics;
static char out[HTTP_MAX_HEAD + HTTP_MAX_BODY + 4096];

static bool starts_instance(const struct http_request *req)
{
	enum api_action action;

	return req->method == HTTP_PUT && config_match_path("/actions", req->path) &&
	       config_json_action(req->body, req->body_len, &action) == 0 &&
	       action == API_ACTION_INSTANCE_START;
}

static void respond(int status, char *body, bool close)
{
	if (status != 200 && status != 204 && (status < 400 || status > 599))
		__builtin_trap(); /* a status the API does not answer */
	if (body) {
		json_t *j = json_loads(body, 0, NULL);

		if (!json_is_object(j))
			__builtin_trap(); /* an answer that is not a JSON object */
		json_decref(j);
	}
	http_format_response(out, sizeof(out), status, body, body ? strlen(body) : 0, close);
	free(body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_input in = {data, size};
	struct instance inst;
	size_t piece;
	bool done = false;

	if (!metrics) {
		log_set_level(LOG_ERROR);
		if (log_set_path("/dev/null") || metrics_create(&metrics, "/dev/null"))
			abort();
	}
	piece = fuzz_u8(&in) % 64 + 1;
	if (http_parser_init(&parser) || instance_init(&inst, "fuzz"))
		abort();
	inst.has_logger = true;
	inst.metrics = metrics;

	while (!done) {
		size_t n = in.len < piece ? in.len : piece;
		size_t took = http_parser_feed(&parser, in.data, n);
		enum http_parse_status st;

		in.data += took;
		in.len -= took;
		do {
			st = http_parser_next(&parser);
			if (st == HTTP_PARSE_REQUEST) {
				struct http_response resp = {0};

				if (starts_instance(&parser.req))
					resp.status = 204;
				else
					api_handle_request(&inst, &parser.req, &resp);
				respond(resp.status, resp.body, !parser.req.keep_alive);
			} else if (st == HTTP_PARSE_CONTINUE) {
				memcpy(out, http_continue, strlen(http_continue));
			} else if (st == HTTP_PARSE_ERROR) {
				respond(parser.error_status, NULL, true);
				done = true;
			}
		} while (st == HTTP_PARSE_REQUEST || st == HTTP_PARSE_CONTINUE);
		if (!in.len && !took)
			done = true;
	}
	http_parser_partial(&parser);
	inst.metrics = NULL;
	instance_destroy(&inst);
	http_parser_fini(&parser);
	return 0;
}
