/* The strict readers every config resource uses on its JSON object (config/<resource>.c), and
 * the compact writer of the dumps. Private to src/config/.
 *
 * Reading is strict, as Firecracker's: unknown fields, wrong JSON types, out-of-range values and
 * duplicate keys are errors. `what` names the object in messages ("drive", "drives[2]"). Every
 * function that can fail returns 0 or -EINVAL with the reason set as the thread's last error
 * (log_set_error, base/log.h): one line, which the API sends back as the fault_message. A null
 * value counts as an absent field (Firecracker's optional fields accept null). */
#ifndef SKIFF_CONFIG_JSON_FIELDS_H
#define SKIFF_CONFIG_JSON_FIELDS_H

#include "config/vm_config.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Parses `body` (not NUL-terminated) as one JSON object: duplicate keys, trailing text, strings
 * with \u0000 and non-UTF-8 bytes are errors. NULL (reason set) when it is not one. */
json_t *cj_parse_object(const char *body, size_t len, const char *what);

/* Every key of `obj` is one of `known` (NULL-terminated). */
int cj_check_fields(const char *what, json_t *obj, const char *const *known);

/* A field's value; NULL when absent or null. */
json_t *cj_field(json_t *obj, const char *name);

int cj_missing(const char *what, const char *name);
int cj_wrong_type(const char *what, const char *name, const char *type);

/* A non-empty string copied into dst[size]; *present says whether it was given. */
int cj_string(const char *what, json_t *obj, const char *name, bool required, char *dst,
	      size_t size, bool *present);
int cj_bool(const char *what, json_t *obj, const char *name, bool required, bool *out,
	    bool *present);
/* An integer in [min, max]: a real such as 2.0 is refused, as Firecracker's serde does. */
int cj_uint(const char *what, json_t *obj, const char *name, bool required, uint64_t min,
	    uint64_t max, uint64_t *out, bool *present);
/* A string that must be one of `values` (NULL-terminated); *out is its index. */
int cj_enum(const char *what, json_t *obj, const char *name, const char *const *values,
	    bool ignore_case, int *out, bool *present);
/* An id field (vm_config_id_valid), required. */
int cj_id(const char *what, json_t *obj, const char *name, char id[VM_CONFIG_MAX_ID + 1]);
/* The id in the body must equal the one in the URL (`path_id`; NULL: not checked). */
int cj_path_id(const char *what, const char *name, const char *body_id, const char *path_id);

/* A field skiff has nothing for: only null (or absence); `why` is the reason given. */
int cj_unsupported(const char *what, json_t *obj, const char *name, const char *why);

/* Compact JSON text of `obj` in its insertion order, malloc'd; takes the reference (NULL in,
 * NULL out). */
char *cj_dump(json_t *obj);

#endif
