#include "config/config_json.h"
#include "base/log.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* What is being read ("machine-config", "drives[2]", ...) and where its error goes. */
struct ctx {
	const char *what;
	char *err;
	size_t err_len;
};

/* Formats the reason, kept on one line: it becomes an HTTP reply's fault_message. */
static int fail(char *err, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (!err || !len)
		return -EINVAL;
	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
	for (char *p = err; *p; p++)
		if (iscntrl((unsigned char)*p))
			*p = ' ';
	return -EINVAL;
}

/* Parses `body` (not NUL-terminated) as one JSON object: duplicate keys, trailing text, strings
 * with \u0000 and non-UTF-8 bytes are errors (jansson's defaults plus JSON_REJECT_DUPLICATES). */
static json_t *parse_object(const char *body, size_t len, const char *what, char *err,
			    size_t err_len)
{
	json_error_t e;
	json_t *root;

	if (!body || len == 0) {
		fail(err, err_len, "%s: empty body, expected a JSON object", what);
		return NULL;
	}
	if (memchr(body, '\0', len)) {
		fail(err, err_len, "%s: invalid JSON: the body contains a NUL byte", what);
		return NULL;
	}
	root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &e);
	if (!root) {
		fail(err, err_len, "%s: invalid JSON at line %d column %d: %s", what, e.line,
		     e.column, e.text);
		return NULL;
	}
	if (!json_is_object(root)) {
		json_decref(root);
		fail(err, err_len, "%s: expected a JSON object", what);
		return NULL;
	}
	return root;
}

static int check_fields(const struct ctx *c, json_t *obj, const char *const *known)
{
	const char *key;
	json_t *value;

	json_object_foreach(obj, key, value) {
		const char *const *k = known;

		while (*k && strcmp(*k, key) != 0)
			k++;
		if (!*k)
			return fail(c->err, c->err_len, "unknown field '%.64s' in %s", key,
				    c->what);
	}
	return 0;
}

/* A field's value; null counts as absent (Firecracker's optional fields accept null). */
static json_t *field(json_t *obj, const char *name)
{
	json_t *v = json_object_get(obj, name);

	return json_is_null(v) ? NULL : v;
}

static int missing(const struct ctx *c, const char *name)
{
	return fail(c->err, c->err_len, "missing required field '%s' in %s", name, c->what);
}

static int wrong_type(const struct ctx *c, const char *name, const char *type)
{
	return fail(c->err, c->err_len, "field '%s' in %s must be %s", name, c->what, type);
}

/* Copies a string field into dst[size]; *present says whether it was given. Empty strings are
 * refused: no field skiff reads means anything when empty. */
static int get_string(const struct ctx *c, json_t *obj, const char *name, bool required,
		      char *dst, size_t size, bool *present)
{
	json_t *v = field(obj, name);
	size_t n;

	*present = false;
	if (!v)
		return required ? missing(c, name) : 0;
	if (!json_is_string(v))
		return wrong_type(c, name, "a string");
	n = json_string_length(v);
	if (n == 0)
		return fail(c->err, c->err_len, "field '%s' in %s must not be empty", name,
			    c->what);
	if (n >= size)
		return fail(c->err, c->err_len, "field '%s' in %s is %zu bytes long; at most %zu",
			    name, c->what, n, size - 1);
	memcpy(dst, json_string_value(v), n + 1);
	*present = true;
	return 0;
}

static int get_bool(const struct ctx *c, json_t *obj, const char *name, bool required, bool *out,
		    bool *present)
{
	json_t *v = field(obj, name);

	*present = false;
	if (!v)
		return required ? missing(c, name) : 0;
	if (!json_is_boolean(v))
		return wrong_type(c, name, "a boolean");
	*out = json_is_true(v);
	*present = true;
	return 0;
}

/* An integer in [min, max]: a real such as 2.0 is refused, as Firecracker's serde does. */
static int get_uint(const struct ctx *c, json_t *obj, const char *name, bool required,
		    uint64_t min, uint64_t max, uint64_t *out, bool *present)
{
	json_t *v = field(obj, name);
	json_int_t n;

	*present = false;
	if (!v)
		return required ? missing(c, name) : 0;
	if (!json_is_integer(v))
		return wrong_type(c, name, "an integer");
	n = json_integer_value(v);
	if (n < 0 || (uint64_t)n < min || (uint64_t)n > max)
		return fail(c->err, c->err_len, "field '%s' in %s is %lld; it must be %llu to %llu",
			    name, c->what, (long long)n, (unsigned long long)min,
			    (unsigned long long)max);
	*out = (uint64_t)n;
	*present = true;
	return 0;
}

/* A string that must be one of `values` (NULL-terminated); *out is its index. */
static int get_enum(const struct ctx *c, json_t *obj, const char *name, const char *const *values,
		    bool ignore_case, int *out, bool *present)
{
	json_t *v = field(obj, name);
	char list[256] = "";
	const char *s;

	*present = false;
	if (!v)
		return 0;
	if (!json_is_string(v))
		return wrong_type(c, name, "a string");
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
	return fail(c->err, c->err_len, "field '%s' in %s is \"%.64s\"; expected one of %s", name,
		    c->what, s, list);
}

/* A rate limiter: skiff has none, so only null (or absence) is accepted. */
static int no_rate_limiter(const struct ctx *c, json_t *obj, const char *name)
{
	json_t *v = field(obj, name);

	if (!v)
		return 0;
	if (!json_is_object(v))
		return wrong_type(c, name, "an object");
	return fail(c->err, c->err_len, "field '%s' in %s: rate limiters are not supported yet",
		    name, c->what);
}

/* A field of Firecracker's that skiff has no device for: only null (or absence). */
static int unsupported(const struct ctx *c, json_t *obj, const char *name, const char *why)
{
	if (!field(obj, name))
		return 0;
	return fail(c->err, c->err_len, "field '%s' in %s: %s", name, c->what, why);
}

static int check_path_id(const struct ctx *c, const char *name, const char *body_id,
			 const char *path_id)
{
	if (path_id && strcmp(body_id, path_id) != 0)
		return fail(c->err, c->err_len, "%s '%s' in the body does not match '%.64s' in the "
			    "path", name, body_id, path_id);
	return 0;
}

static int get_id(const struct ctx *c, json_t *obj, const char *name, char id[VM_CONFIG_MAX_ID + 1])
{
	json_t *v = field(obj, name);

	if (!v)
		return missing(c, name);
	if (!json_is_string(v))
		return wrong_type(c, name, "a string");
	if (!vm_config_id_valid(json_string_value(v)))
		return fail(c->err, c->err_len, "field '%s' in %s is \"%.64s\"; an id is 1 to %d "
			    "letters, digits, '_' or '-'", name, c->what, json_string_value(v),
			    VM_CONFIG_MAX_ID);
	strcpy(id, json_string_value(v));
	return 0;
}

/* --- boot-source --- */

static int boot_source(struct vm_config *cfg, json_t *obj, const struct ctx *c)
{
	static const char *const known[] = {"kernel_image_path", "initrd_path", "boot_args", NULL};
	/* 12 KiB: on the heap rather than the API thread's stack. */
	char *kernel = malloc(2 * VM_CONFIG_MAX_PATH + VM_CONFIG_MAX_CMDLINE);
	char *initrd = kernel + VM_CONFIG_MAX_PATH, *args = initrd + VM_CONFIG_MAX_PATH;
	bool has_kernel, has_initrd, has_args;
	int ret;

	if (!kernel)
		return fail(c->err, c->err_len, "%s: out of memory", c->what);
	/* boot_args: vm_config_validate's limit, which leaves room for what
	 * vm_config_kernel_cmdline() appends. */
	if (!(ret = check_fields(c, obj, known)) &&
	    !(ret = get_string(c, obj, "kernel_image_path", true, kernel, VM_CONFIG_MAX_PATH,
			       &has_kernel)) &&
	    !(ret = get_string(c, obj, "initrd_path", false, initrd, VM_CONFIG_MAX_PATH,
			       &has_initrd)) &&
	    !(ret = get_string(c, obj, "boot_args", false, args, VM_CONFIG_MAX_CMDLINE - 32,
			       &has_args)))
		ret = vm_config_set_boot_source(cfg, kernel, has_initrd ? initrd : NULL,
						has_args ? args : NULL);
	free(kernel);
	return ret;
}

int config_json_boot_source(struct vm_config *cfg, const char *body, size_t len, char *err,
			    size_t err_len)
{
	struct ctx c = {"boot-source", err, err_len};
	json_t *obj = parse_object(body, len, c.what, err, err_len);
	int ret;

	if (!obj)
		return -EINVAL;
	ret = boot_source(cfg, obj, &c);
	json_decref(obj);
	return ret;
}

/* --- machine-config --- */

#define MAX_VCPUS    32	       /* Firecracker's limit (and below skiff's) */
#define MAX_MEM_MIB  (1ULL << 30) /* vm_config_validate's limit; the host check comes later */

static int machine_config(struct vm_config *cfg, json_t *obj, bool patch, const struct ctx *c)
{
	static const char *const known[] = {"vcpu_count", "mem_size_mib", "smt",
					    "track_dirty_pages", "cpu_template", "huge_pages",
					    "enable_pci", NULL};
	static const char *const templates[] = {"None", "C3", "T2", "T2S", "T2CL", "T2A", "V1N1",
						NULL};
	static const char *const huge_pages[] = {"None", "Transparent", "2M", NULL};
	uint64_t vcpus = 0, mem = 0;
	bool smt = false, dirty = false, pci = false;
	bool has_vcpus, has_mem, has_smt, has_dirty, has_template, has_huge, has_pci;
	int tmpl = 0, huge = 0, ret;

	if ((ret = check_fields(c, obj, known)) ||
	    (ret = get_uint(c, obj, "vcpu_count", !patch, 1, MAX_VCPUS, &vcpus, &has_vcpus)) ||
	    (ret = get_uint(c, obj, "mem_size_mib", !patch, 1, MAX_MEM_MIB, &mem, &has_mem)) ||
	    (ret = get_bool(c, obj, "smt", false, &smt, &has_smt)) ||
	    (ret = get_bool(c, obj, "track_dirty_pages", false, &dirty, &has_dirty)) ||
	    (ret = get_enum(c, obj, "cpu_template", templates, false, &tmpl, &has_template)) ||
	    (ret = get_enum(c, obj, "huge_pages", huge_pages, false, &huge, &has_huge)) ||
	    (ret = get_bool(c, obj, "enable_pci", false, &pci, &has_pci)))
		return ret;
	if (smt)
		return fail(c->err, c->err_len, "%s: smt is not supported by skiff", c->what);
	if (tmpl)
		return fail(c->err, c->err_len, "%s: cpu_template %s is not supported by skiff "
			    "(only \"None\")", c->what, templates[tmpl]);
	if (huge)
		return fail(c->err, c->err_len, "%s: huge_pages %s is not supported by skiff "
			    "(only \"None\")", c->what, huge_pages[huge]);
	if (has_vcpus)
		cfg->nr_cpus = (int)vcpus;
	if (has_mem)
		cfg->memory_mib = mem;
	/* PUT sets what it does not give to the defaults; PATCH leaves it. */
	if (has_dirty || !patch)
		cfg->track_dirty_pages = dirty;
	/* skiff's own key (Firecracker has only the --enable-pci flag): left as it is unless
	 * given, so a PUT does not undo the flag. */
	if (has_pci)
		cfg->enable_pci = pci;
	return 0;
}

int config_json_machine_config(struct vm_config *cfg, const char *body, size_t len, bool patch,
			       char *err, size_t err_len)
{
	struct ctx c = {"machine-config", err, err_len};
	json_t *obj = parse_object(body, len, c.what, err, err_len);
	int ret;

	if (!obj)
		return -EINVAL;
	ret = machine_config(cfg, obj, patch, &c);
	json_decref(obj);
	return ret;
}

/* --- drives --- */

static bool partuuid_valid(const char *s)
{
	for (; *s; s++)
		if (!isxdigit((unsigned char)*s) && *s != '-')
			return false;
	return true;
}

static int drive(struct vm_config *cfg, const char *path_id, json_t *obj, const struct ctx *c)
{
	static const char *const known[] = {"drive_id", "path_on_host", "is_root_device",
					    "is_read_only", "partuuid", "cache_type",
					    "io_engine", "rate_limiter", "socket", NULL};
	static const char *const cache_types[] = {"Unsafe", "Writeback", NULL};
	static const char *const io_engines[] = {"Sync", "Async", NULL};
	struct disk_config *d = calloc(1, sizeof(*d));
	bool present;
	int cache = 0, engine = 0, ret;

	if (!d)
		return fail(c->err, c->err_len, "%s: out of memory", c->what);
	if ((ret = check_fields(c, obj, known)) || (ret = get_id(c, obj, "drive_id", d->id)) ||
	    (ret = check_path_id(c, "drive_id", d->id, path_id)) ||
	    (ret = unsupported(c, obj, "socket", "vhost-user drives are not supported by skiff")) ||
	    (ret = get_string(c, obj, "path_on_host", true, d->path, sizeof(d->path), &present)) ||
	    (ret = get_bool(c, obj, "is_root_device", true, &d->is_root, &present)) ||
	    (ret = get_bool(c, obj, "is_read_only", false, &d->read_only, &present)) ||
	    (ret = get_string(c, obj, "partuuid", false, d->partuuid, sizeof(d->partuuid),
			      &present)) ||
	    (ret = get_enum(c, obj, "cache_type", cache_types, false, &cache, &present)) ||
	    (ret = get_enum(c, obj, "io_engine", io_engines, false, &engine, &present)) ||
	    (ret = no_rate_limiter(c, obj, "rate_limiter")))
		goto out;
	/* It goes on the kernel command line: no spaces or other parameters smuggled in. */
	if (!partuuid_valid(d->partuuid)) {
		ret = fail(c->err, c->err_len, "field 'partuuid' in %s must be hex digits and '-'",
			   c->what);
		goto out;
	}
	d->cache_type = cache ? DISK_CACHE_WRITEBACK : DISK_CACHE_UNSAFE;
	d->io_engine = engine ? DISK_IO_ASYNC : DISK_IO_SYNC;
	ret = vm_config_put_disk(cfg, d, c->err, c->err_len);
out:
	free(d);
	return ret;
}

int config_json_drive(struct vm_config *cfg, const char *path_id, const char *body, size_t len,
		      char *err, size_t err_len)
{
	struct ctx c = {"drive", err, err_len};
	json_t *obj = parse_object(body, len, c.what, err, err_len);
	int ret;

	if (!obj)
		return -EINVAL;
	ret = drive(cfg, path_id, obj, &c);
	json_decref(obj);
	return ret;
}

int config_json_drive_update(const struct vm_config *cfg, const char *path_id, const char *body,
			     size_t len, struct drive_update *out, char *err, size_t err_len)
{
	static const char *const known[] = {"drive_id", "path_on_host", "rate_limiter", NULL};
	struct ctx c = {"drive", err, err_len};
	json_t *obj = parse_object(body, len, c.what, err, err_len);
	struct drive_update *u;
	bool present, found = false;
	int ret;

	if (!obj)
		return -EINVAL;
	u = calloc(1, sizeof(*u));
	if (!u) {
		json_decref(obj);
		return fail(err, err_len, "drive: out of memory");
	}
	if ((ret = check_fields(&c, obj, known)) ||
	    (ret = get_id(&c, obj, "drive_id", u->drive_id)) ||
	    (ret = check_path_id(&c, "drive_id", u->drive_id, path_id)) ||
	    (ret = get_string(&c, obj, "path_on_host", false, u->path_on_host,
			      sizeof(u->path_on_host), &present)) ||
	    (ret = no_rate_limiter(&c, obj, "rate_limiter")))
		goto out;
	for (int i = 0; i < cfg->nr_disks; i++)
		found |= strcmp(cfg->disks[i].id, u->drive_id) == 0;
	if (!found) {
		ret = fail(err, err_len, "drive %s does not exist", u->drive_id);
		goto out;
	}
	*out = *u;
out:
	free(u);
	json_decref(obj);
	return ret;
}

/* --- network-interfaces --- */

static int network_interface(struct vm_config *cfg, const char *path_id, json_t *obj,
			     const struct ctx *c)
{
	static const char *const known[] = {"iface_id", "host_dev_name", "guest_mac",
					    "rx_rate_limiter", "tx_rate_limiter", "mtu", NULL};
	struct net_config nc = {0};
	char mac[32];
	bool has_mac;
	int ret;

	if ((ret = check_fields(c, obj, known)) || (ret = get_id(c, obj, "iface_id", nc.id)) ||
	    (ret = check_path_id(c, "iface_id", nc.id, path_id)))
		return ret;
	if (!field(obj, "host_dev_name"))
		return missing(c, "host_dev_name");
	if (!json_is_string(field(obj, "host_dev_name")))
		return wrong_type(c, "host_dev_name", "a string");
	if (!vm_config_tap_name_valid(json_string_value(field(obj, "host_dev_name"))))
		return fail(c->err, c->err_len, "field 'host_dev_name' in %s must be an interface "
			    "name of 1 to 15 bytes, without '/', ':' or spaces", c->what);
	strcpy(nc.tap, json_string_value(field(obj, "host_dev_name")));
	if ((ret = get_string(c, obj, "guest_mac", false, mac, sizeof(mac), &has_mac)) ||
	    (ret = no_rate_limiter(c, obj, "rx_rate_limiter")) ||
	    (ret = no_rate_limiter(c, obj, "tx_rate_limiter")) ||
	    (ret = unsupported(c, obj, "mtu", "an MTU is not supported by skiff")))
		return ret;
	if (has_mac) {
		if (vm_config_parse_mac(mac, nc.mac))
			return fail(c->err, c->err_len, "field 'guest_mac' in %s is \"%s\"; "
				    "expected xx:xx:xx:xx:xx:xx", c->what, mac);
		if (nc.mac[0] & 1)
			return fail(c->err, c->err_len, "field 'guest_mac' in %s is a multicast "
				    "address", c->what);
		nc.has_mac = true;
	}
	return vm_config_put_net(cfg, &nc, c->err, c->err_len);
}

int config_json_network_interface(struct vm_config *cfg, const char *path_id, const char *body,
				  size_t len, char *err, size_t err_len)
{
	struct ctx c = {"network-interface", err, err_len};
	json_t *obj = parse_object(body, len, c.what, err, err_len);
	int ret;

	if (!obj)
		return -EINVAL;
	ret = network_interface(cfg, path_id, obj, &c);
	json_decref(obj);
	return ret;
}

/* --- entropy, logger, metrics, actions, vm state --- */

static int entropy(struct vm_config *cfg, json_t *obj, const struct ctx *c)
{
	static const char *const known[] = {"rate_limiter", NULL};
	int ret;

	if ((ret = check_fields(c, obj, known)) || (ret = no_rate_limiter(c, obj, "rate_limiter")))
		return ret;
	cfg->rng = true;
	return 0;
}

int config_json_entropy(struct vm_config *cfg, const char *body, size_t len, char *err,
			size_t err_len)
{
	struct ctx c = {"entropy", err, err_len};
	json_t *obj = parse_object(body, len, c.what, err, err_len);
	int ret;

	if (!obj)
		return -EINVAL;
	ret = entropy(cfg, obj, &c);
	json_decref(obj);
	return ret;
}

static int logger(json_t *obj, struct logger_config *out, const struct ctx *c)
{
	static const char *const known[] = {"log_path", "level", "show_level", "show_log_origin",
					    "module", NULL};
	static const char *const levels[] = {"Error", "Warning", "Info", "Debug", "Trace", "Off",
					     NULL};
	/* skiff's levels: Trace is Debug, and errors are always logged, so Off is Error. */
	static const enum log_level map[] = {LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG, LOG_DEBUG,
					     LOG_ERROR};
	struct logger_config *lc = calloc(1, sizeof(*lc));
	char module[256];
	bool present;
	int level = 0, ret;

	if (!lc)
		return fail(c->err, c->err_len, "%s: out of memory", c->what);
	/* module: accepted for compatibility and ignored; skiff's log has no module filter. */
	if (!(ret = check_fields(c, obj, known)) &&
	    !(ret = get_string(c, obj, "log_path", false, lc->log_path, sizeof(lc->log_path),
			       &present)) &&
	    !(ret = get_enum(c, obj, "level", levels, true, &level, &lc->has_level)) &&
	    !(ret = get_bool(c, obj, "show_level", false, &lc->show_level, &present)) &&
	    !(ret = get_bool(c, obj, "show_log_origin", false, &lc->show_log_origin, &present)) &&
	    !(ret = get_string(c, obj, "module", false, module, sizeof(module), &present))) {
		lc->level = lc->has_level ? (int)map[level] : 0;
		*out = *lc;
	}
	free(lc);
	return ret;
}

int config_json_logger(const char *body, size_t len, struct logger_config *out, char *err,
		       size_t err_len)
{
	struct ctx c = {"logger", err, err_len};
	json_t *obj = parse_object(body, len, c.what, err, err_len);
	int ret;

	if (!obj)
		return -EINVAL;
	ret = logger(obj, out, &c);
	json_decref(obj);
	return ret;
}

static int metrics(json_t *obj, struct metrics_config *out, const struct ctx *c)
{
	static const char *const known[] = {"metrics_path", NULL};
	struct metrics_config *mc = calloc(1, sizeof(*mc));
	bool present;
	int ret;

	if (!mc)
		return fail(c->err, c->err_len, "%s: out of memory", c->what);
	if (!(ret = check_fields(c, obj, known)) &&
	    !(ret = get_string(c, obj, "metrics_path", true, mc->metrics_path,
			       sizeof(mc->metrics_path), &present)))
		*out = *mc;
	free(mc);
	return ret;
}

int config_json_metrics(const char *body, size_t len, struct metrics_config *out, char *err,
			size_t err_len)
{
	struct ctx c = {"metrics", err, err_len};
	json_t *obj = parse_object(body, len, c.what, err, err_len);
	int ret;

	if (!obj)
		return -EINVAL;
	ret = metrics(obj, out, &c);
	json_decref(obj);
	return ret;
}

/* A body that is one required enum field. */
static int one_enum(const char *what, const char *name, const char *const *values,
		    const char *body, size_t len, int *out, char *err, size_t err_len)
{
	const char *const known[] = {name, NULL};
	struct ctx c = {what, err, err_len};
	json_t *obj = parse_object(body, len, what, err, err_len);
	bool present;
	int v = 0, ret;

	if (!obj)
		return -EINVAL;
	if (!(ret = check_fields(&c, obj, known)) &&
	    !(ret = get_enum(&c, obj, name, values, false, &v, &present))) {
		if (present)
			*out = v;
		else
			ret = missing(&c, name);
	}
	json_decref(obj);
	return ret;
}

int config_json_action(const char *body, size_t len, enum api_action *out, char *err,
		       size_t err_len)
{
	/* In enum api_action's order. */
	static const char *const actions[] = {"InstanceStart", "SendCtrlAltDel", "FlushMetrics",
					      NULL};
	int v, ret = one_enum("action", "action_type", actions, body, len, &v, err, err_len);

	if (!ret)
		*out = (enum api_action)v;
	return ret;
}

int config_json_vm_state(const char *body, size_t len, bool *pause, char *err, size_t err_len)
{
	static const char *const states[] = {"Paused", "Resumed", NULL};
	int v, ret = one_enum("vm", "state", states, body, len, &v, err, err_len);

	if (!ret)
		*pause = v == 0;
	return ret;
}

/* --- the whole document --- */

static int section_object(json_t *doc, const char *name, json_t **out, char *err, size_t err_len)
{
	*out = field(doc, name);
	if (*out && !json_is_object(*out))
		return fail(err, err_len, "'%s' must be an object", name);
	return 0;
}

static int section_array(json_t *doc, const char *name, json_t **out, char *err, size_t err_len)
{
	json_t *v;
	size_t i;

	*out = field(doc, name);
	if (!*out)
		return 0;
	if (!json_is_array(*out))
		return fail(err, err_len, "'%s' must be an array", name);
	json_array_foreach(*out, i, v)
		if (!json_is_object(v))
			return fail(err, err_len, "%s[%zu] must be an object", name, i);
	return 0;
}

static int document(struct vm_config *cfg, struct logger_config *lc, struct metrics_config *mc,
		    json_t *doc, char *err, size_t err_len)
{
	static const char *const known[] = {"boot-source", "machine-config", "drives",
					    "network-interfaces", "logger", "metrics", "entropy",
					    "balloon", "vsock", "mmds-config", "cpu-config",
					    "memory-hotplug", "pmem", NULL};
	static const char *const absent[] = {"balloon", "vsock", "mmds-config", "cpu-config",
					     "memory-hotplug", NULL};
	struct ctx top = {"the configuration", err, err_len};
	json_t *boot, *machine, *drives, *nets, *log, *met, *rng, *v;
	char what[48];
	size_t i;
	int ret;

	if ((ret = check_fields(&top, doc, known)))
		return ret;
	for (const char *const *k = absent; *k; k++)
		if (field(doc, *k))
			return fail(err, err_len, "'%s' is not supported by skiff", *k);
	v = field(doc, "pmem");
	if (v && !(json_is_array(v) && json_array_size(v) == 0))
		return fail(err, err_len, "'pmem' is not supported by skiff");
	if ((ret = section_object(doc, "boot-source", &boot, err, err_len)) ||
	    (ret = section_object(doc, "machine-config", &machine, err, err_len)) ||
	    (ret = section_array(doc, "drives", &drives, err, err_len)) ||
	    (ret = section_array(doc, "network-interfaces", &nets, err, err_len)) ||
	    (ret = section_object(doc, "logger", &log, err, err_len)) ||
	    (ret = section_object(doc, "metrics", &met, err, err_len)) ||
	    (ret = section_object(doc, "entropy", &rng, err, err_len)))
		return ret;
	if (!boot)
		return fail(err, err_len, "missing required section 'boot-source'");
	if ((log && !lc) || (met && !mc))
		return fail(err, err_len, "'%s' is not supported here", log && !lc ? "logger"
										 : "metrics");

	if ((ret = boot_source(cfg, boot, &(struct ctx){"boot-source", err, err_len})))
		return ret;
	if (machine &&
	    (ret = machine_config(cfg, machine, false, &(struct ctx){"machine-config", err,
								      err_len})))
		return ret;
	json_array_foreach(drives, i, v) {
		snprintf(what, sizeof(what), "drives[%zu]", i);
		if ((ret = drive(cfg, NULL, v, &(struct ctx){what, err, err_len})))
			return ret;
	}
	json_array_foreach(nets, i, v) {
		snprintf(what, sizeof(what), "network-interfaces[%zu]", i);
		if ((ret = network_interface(cfg, NULL, v, &(struct ctx){what, err, err_len})))
			return ret;
	}
	if (rng && (ret = entropy(cfg, rng, &(struct ctx){"entropy", err, err_len})))
		return ret;
	if (log && (ret = logger(log, lc, &(struct ctx){"logger", err, err_len})))
		return ret;
	if (met && (ret = metrics(met, mc, &(struct ctx){"metrics", err, err_len})))
		return ret;
	return 0;
}

int config_json_document(struct vm_config *cfg, struct logger_config *logger_out,
			 struct metrics_config *metrics_out, const char *doc, size_t len, char *err,
			 size_t err_len)
{
	json_t *obj = parse_object(doc, len, "configuration", err, err_len);
	struct vm_config *tmp;
	struct logger_config *lc;
	struct metrics_config *mc;
	int ret = -EINVAL;

	if (!obj)
		return -EINVAL;
	/* Every section goes into copies; cfg and the outputs change only when all are good. */
	tmp = malloc(sizeof(*tmp));
	lc = calloc(1, sizeof(*lc));
	mc = calloc(1, sizeof(*mc));
	if (!tmp || !lc || !mc) {
		fail(err, err_len, "configuration: out of memory");
		goto out;
	}
	vm_config_copy(tmp, cfg);
	ret = document(tmp, logger_out ? lc : NULL, metrics_out ? mc : NULL, obj, err, err_len);
	if (ret)
		goto out;
	vm_config_copy(cfg, tmp);
	if (logger_out)
		*logger_out = *lc;
	if (metrics_out)
		*metrics_out = *mc;
out:
	free(tmp);
	free(lc);
	free(mc);
	json_decref(obj);
	return ret;
}

/* --- dumps --- */

static json_t *machine_config_json(const struct vm_config *cfg)
{
	json_t *o = json_pack("{s:i, s:I, s:b, s:b, s:s}", "vcpu_count", cfg->nr_cpus,
			      "mem_size_mib", (json_int_t)cfg->memory_mib, "smt", 0,
			      "track_dirty_pages", cfg->track_dirty_pages, "huge_pages", "None");

	/* Only when set, so that dumps of MMIO machines stay as Firecracker's. */
	if (o && cfg->enable_pci)
		json_object_set_new(o, "enable_pci", json_true());
	return o;
}

static char *dump(json_t *obj)
{
	char *s = obj ? json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;

	json_decref(obj);
	return s;
}

char *config_json_machine_config_dump(const struct vm_config *cfg)
{
	return dump(machine_config_json(cfg));
}

static json_t *drive_json(const struct disk_config *d)
{
	return json_pack("{s:s, s:s?, s:b, s:s, s:b, s:s, s:n, s:s}", "drive_id", d->id,
			 "partuuid", d->partuuid[0] ? d->partuuid : NULL, "is_root_device",
			 d->is_root, "cache_type",
			 d->cache_type == DISK_CACHE_WRITEBACK ? "Writeback" : "Unsafe",
			 "is_read_only", d->read_only, "path_on_host", d->path, "rate_limiter",
			 "io_engine", d->io_engine == DISK_IO_ASYNC ? "Async" : "Sync");
}

static json_t *net_json(const struct net_config *nc)
{
	char mac[18];

	snprintf(mac, sizeof(mac), "%02x:%02x:%02x:%02x:%02x:%02x", nc->mac[0], nc->mac[1],
		 nc->mac[2], nc->mac[3], nc->mac[4], nc->mac[5]);
	return json_pack("{s:s, s:s, s:s?, s:n, s:n}", "iface_id", nc->id, "host_dev_name",
			 nc->tap, "guest_mac", nc->has_mac ? mac : NULL, "rx_rate_limiter",
			 "tx_rate_limiter");
}

/* Firecracker's FullVmConfiguration, in the order Firecracker writes it; what skiff has no
 * device for (or does not keep in vm_config: logger, metrics) is null. */
char *config_json_vm_config_dump(const struct vm_config *cfg)
{
	json_t *drives = json_array(), *nets = json_array(), *boot = json_null();
	bool ok = drives && nets;

	for (int i = 0; ok && i < cfg->nr_disks; i++)
		ok = json_array_append_new(drives, drive_json(&cfg->disks[i])) == 0;
	for (int i = 0; ok && i < cfg->nr_nets; i++)
		ok = json_array_append_new(nets, net_json(&cfg->nets[i])) == 0;
	if (ok && cfg->kernel_path)
		boot = json_pack("{s:s, s:s?, s:s?}", "kernel_image_path", cfg->kernel_path,
				 "initrd_path", cfg->initrd_path, "boot_args", cfg->cmdline);
	if (!ok || !boot) {
		json_decref(drives);
		json_decref(nets);
		json_decref(boot);
		return NULL;
	}
	/* "o" steals the references, also when json_pack fails. */
	return dump(json_pack("{s:n, s:o, s:o, s:n, s:n, s:o, s:n, s:n, s:o, s:n, s:o}", "balloon",
			      "drives", drives, "boot-source", boot, "cpu-config", "logger",
			      "machine-config", machine_config_json(cfg), "metrics",
			      "mmds-config", "network-interfaces", nets, "vsock", "entropy",
			      cfg->rng ? json_object() : json_null()));
}
