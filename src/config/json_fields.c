#include "config/json_fields.h"
#include "base/log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

json_t *cj_parse_object(const char *body, size_t len, const char *what)
{
	json_error_t e;
	json_t *root;

	if (!body || len == 0) {
		log_set_error(-EINVAL, "%s: empty body, expected a JSON object", what);
		return NULL;
	}
	if (memchr(body, '\0', len)) {
		log_set_error(-EINVAL, "%s: invalid JSON: the body contains a NUL byte", what);
		return NULL;
	}
	root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &e);
	if (!root) {
		log_set_error(-EINVAL, "%s: invalid JSON at line %d column %d: %s", what, e.line,
			      e.column, e.text);
		return NULL;
	}
	if (!json_is_object(root)) {
		json_decref(root);
		log_set_error(-EINVAL, "%s: expected a JSON object", what);
		return NULL;
	}
	return root;
}

int cj_check_fields(const char *what, json_t *obj, const char *const *known)
{
	const char *key;
	json_t *value;

	json_object_foreach(obj, key, value)
	{
		const char *const *k = known;

		while (*k && strcmp(*k, key) != 0)
			k++;
		if (!*k)
			return log_set_error(-EINVAL, "unknown field '%.64s' in %s", key, what);
	}
	return 0;
}

json_t *cj_field(json_t *obj, const char *name)
{
	json_t *v = json_object_get(obj, name);

	return json_is_null(v) ? NULL : v;
}

int cj_missing(const char *what, const char *name)
{
	return log_set_error(-EINVAL, "missing required field '%s' in %s", name, what);
}

int cj_wrong_type(const char *what, const char *name, const char *type)
{
	return log_set_error(-EINVAL, "field '%s' in %s must be %s", name, what, type);
}

/* Empty strings are refused: no field skiff reads means anything when empty. */
int cj_string(const char *what, json_t *obj, const char *name, bool required, char *dst,
	      size_t size, bool *present)
{
	json_t *v = cj_field(obj, name);
	size_t n;

	*present = false;
	if (!v)
		return required ? cj_missing(what, name) : 0;
	if (!json_is_string(v))
		return cj_wrong_type(what, name, "a string");
	n = json_string_length(v);
	if (n == 0)
		return log_set_error(-EINVAL, "field '%s' in %s must not be empty", name, what);
	if (n >= size)
		return log_set_error(-EINVAL, "field '%s' in %s is %zu bytes long; at most %zu",
				     name, what, n, size - 1);
	memcpy(dst, json_string_value(v), n + 1);
	*present = true;
	return 0;
}

int cj_bool(const char *what, json_t *obj, const char *name, bool required, bool *out,
	    bool *present)
{
	json_t *v = cj_field(obj, name);

	*present = false;
	if (!v)
		return required ? cj_missing(what, name) : 0;
	if (!json_is_boolean(v))
		return cj_wrong_type(what, name, "a boolean");
	*out = json_is_true(v);
	*present = true;
	return 0;
}

int cj_uint(const char *what, json_t *obj, const char *name, bool required, uint64_t min,
	    uint64_t max, uint64_t *out, bool *present)
{
	json_t *v = cj_field(obj, name);
	json_int_t n;

	*present = false;
	if (!v)
		return required ? cj_missing(what, name) : 0;
	if (!json_is_integer(v))
		return cj_wrong_type(what, name, "an integer");
	n = json_integer_value(v);
	if (n < 0 || (uint64_t)n < min || (uint64_t)n > max)
		return log_set_error(-EINVAL, "field '%s' in %s is %lld; it must be %llu to %llu",
				     name, what, (long long)n, (unsigned long long)min,
				     (unsigned long long)max);
	*out = (uint64_t)n;
	*present = true;
	return 0;
}

int cj_enum(const char *what, json_t *obj, const char *name, const char *const *values,
	    bool ignore_case, int *out, bool *present)
{
	json_t *v = cj_field(obj, name);
	char list[256] = "";
	const char *s;

	*present = false;
	if (!v)
		return 0;
	if (!json_is_string(v))
		return cj_wrong_type(what, name, "a string");
	s = json_string_value(v);
	for (int i = 0; values[i]; i++) {
		if (ignore_case ? strcasecmp(s, values[i]) == 0 : strcmp(s, values[i]) == 0) {
			*out = i;
			*present = true;
			return 0;
		}
		snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s\"%s\"",
			 i ? ", " : "", values[i]);
	}
	return log_set_error(-EINVAL, "field '%s' in %s is \"%.64s\"; expected one of %s", name,
			     what, s, list);
}

int cj_id(const char *what, json_t *obj, const char *name, char id[VM_CONFIG_MAX_ID + 1])
{
	json_t *v = cj_field(obj, name);

	if (!v)
		return cj_missing(what, name);
	if (!json_is_string(v))
		return cj_wrong_type(what, name, "a string");
	if (!vm_config_id_valid(json_string_value(v)))
		return log_set_error(-EINVAL,
				     "field '%s' in %s is \"%.64s\"; an id is 1 to %d "
				     "letters, digits, '_' or '-'",
				     name, what, json_string_value(v), VM_CONFIG_MAX_ID);
	strcpy(id, json_string_value(v));
	return 0;
}

int cj_path_id(const char *what, const char *name, const char *body_id, const char *path_id)
{
	if (path_id && strcmp(body_id, path_id) != 0)
		return log_set_error(-EINVAL,
				     "%s '%s' in the body does not match '%.64s' in the "
				     "path",
				     name, body_id, path_id);
	return 0;
}

int cj_unsupported(const char *what, json_t *obj, const char *name, const char *why)
{
	if (!cj_field(obj, name))
		return 0;
	return log_set_error(-EINVAL, "field '%s' in %s: %s", name, what, why);
}

char *cj_dump(json_t *obj)
{
	char *s = obj ? json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;

	json_decref(obj);
	return s;
}
