/* Disks (virtio-blk): --disk PATH[,ro][,id=NAME][,bw=SIZE/MS][,ops=N/MS][,num_queues=N], the
 * "drives" section and PUT /drives/{id} ({"drive_id", "path_on_host", "is_root_device",
 * "is_read_only", "partuuid", "cache_type", "io_engine", "rate_limiter", "num_queues"}),
 * PATCH /drives/{id}'s body, and their checks. */
#include "config/json_fields.h"
#include "config/rate_limiter.h"
#include "config/resource.h"
#include "base/log.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* --- the command line --- */

int vm_config_add_disk(struct vm_config *cfg, const char *spec)
{
	struct disk_config d = {0};
	char buf[4200];
	char *fields[8];
	int n;

	if (cfg->nr_disks == VM_CONFIG_MAX_DISKS)
		return log_set_error(-ENOSPC, "--disk %s: at most %d disks", spec,
				     VM_CONFIG_MAX_DISKS);
	if (config_copy_field(buf, sizeof(buf), spec) ||
	    (n = config_split_fields(buf, fields, 8)) < 1 || spec[0] == ',')
		return log_set_error(-EINVAL,
				     "--disk %s: expected PATH[,ro][,id=NAME][,bw=SIZE/MS]"
				     "[,ops=N/MS][,num_queues=N]",
				     spec);
	if (config_copy_field(d.path, sizeof(d.path), fields[0]))
		return log_set_error(-EINVAL, "--disk: the path is too long");
	snprintf(d.id, sizeof(d.id), "disk%d", cfg->nr_disks);
	for (int i = 1; i < n; i++) {
		if (strcmp(fields[i], "ro") == 0)
			d.read_only = true;
		else if (strcmp(fields[i], "rw") == 0)
			d.read_only = false;
		else if (strncmp(fields[i], "id=", 3) == 0 &&
			 config_copy_field(d.id, sizeof(d.id), fields[i] + 3) == 0)
			;
		else if (strncmp(fields[i], "bw=", 3) == 0) {
			if (config_parse_bucket("--disk", "bw", fields[i] + 3,
						&d.rate_limiter.bandwidth))
				return -EINVAL;
		} else if (strncmp(fields[i], "ops=", 4) == 0) {
			if (config_parse_bucket("--disk", "ops", fields[i] + 4,
						&d.rate_limiter.ops))
				return -EINVAL;
		} else if (strncmp(fields[i], "num_queues=", 11) == 0) {
			if (vm_config_parse_queues("--disk", spec, "num_queues", fields[i] + 11,
						   DISK_MAX_QUEUES, &d.num_queues))
				return -EINVAL;
		} else
			return log_set_error(-EINVAL,
					     "--disk %s: unknown or too long option '%s' "
					     "(expected ro, id=NAME, bw=SIZE/MS, ops=N/MS or "
					     "num_queues=N)",
					     spec, fields[i]);
	}
	cfg->disks[cfg->nr_disks++] = d;
	return 0;
}

/* --- the table --- */

static int find_disk(const struct vm_config *cfg, const char *id)
{
	for (int i = 0; i < cfg->nr_disks; i++)
		if (strcmp(cfg->disks[i].id, id) == 0)
			return i;
	return -1;
}

int vm_config_put_disk(struct vm_config *cfg, const struct disk_config *d)
{
	int i = find_disk(cfg, d->id);

	if (d->is_root)
		for (int j = 0; j < cfg->nr_disks; j++)
			if (j != i && cfg->disks[j].is_root)
				return log_set_error(-EINVAL,
						     "drive %s: drive %s is already the "
						     "root device",
						     d->id, cfg->disks[j].id);
	if (i < 0) {
		if (cfg->nr_disks == VM_CONFIG_MAX_DISKS)
			return log_set_error(-ENOSPC, "drive %s: at most %d drives", d->id,
					     VM_CONFIG_MAX_DISKS);
		i = cfg->nr_disks++;
	}
	cfg->disks[i] = *d;
	if (d->is_root && i > 0) {
		/* The root disk first, the others keep their order. */
		struct disk_config root = cfg->disks[i];

		memmove(&cfg->disks[1], &cfg->disks[0], (size_t)i * sizeof(cfg->disks[0]));
		cfg->disks[0] = root;
	}
	return 0;
}

/* --- checks --- */

/* One image as two disks is fine read-only; with a writer, the guest would corrupt it. */
static int same_file_twice(const struct disk_config *a, const struct disk_config *b)
{
	struct stat sa, sb;

	if (a->read_only && b->read_only)
		return 0;
	if (stat(a->path, &sa) != 0 || stat(b->path, &sb) != 0)
		return 0; /* the file checks say why */
	if (sa.st_dev != sb.st_dev || sa.st_ino != sb.st_ino)
		return 0;
	return log_set_error(-EINVAL, "disk %s: the same file as disk %s, and one is writable",
			     b->id, a->id);
}

static int validate(const struct vm_config *cfg)
{
	int ret;

	for (int i = 0; i < cfg->nr_disks; i++) {
		const struct disk_config *d = &cfg->disks[i];

		if ((ret = config_check_id("--disk", d->id)))
			return ret;
		if ((ret = vm_config_check_file("disk", d->path, true, !d->read_only)))
			return ret;
		/* A queue per vCPU is what the guest's blk-mq can use; more would sit idle. */
		if (d->num_queues > (unsigned)cfg->nr_cpus)
			return log_set_error(-EINVAL,
					     "disk %s: num_queues %u is more than the vCPU count "
					     "(%d)",
					     d->id, d->num_queues, cfg->nr_cpus);
		for (int j = 0; j < i; j++) {
			if (strcmp(cfg->disks[j].id, d->id) == 0)
				return log_set_error(-EINVAL, "two disks have id=%s", d->id);
			if ((ret = same_file_twice(&cfg->disks[j], d)))
				return ret;
		}
		if (d->is_root && i != 0)
			return log_set_error(-EINVAL,
					     "disk %s: the root device must be the first "
					     "disk",
					     d->id);
	}
	return 0;
}

/* --- JSON --- */

static bool partuuid_valid(const char *s)
{
	for (; *s; s++)
		if (!isxdigit((unsigned char)*s) && *s != '-')
			return false;
	return true;
}

static int apply(const struct config_target *t, const char *path_id, json_t *obj, const char *what)
{
	static const char *const known[] = {
	    "drive_id",	 "path_on_host", "is_root_device", "is_read_only", "partuuid", "cache_type",
	    "io_engine", "rate_limiter", "socket",	   "num_queues",   NULL};
	static const char *const cache_types[] = {"Unsafe", "Writeback", NULL};
	static const char *const io_engines[] = {"Sync", "Async", NULL};
	struct disk_config *d = calloc(1, sizeof(*d));
	bool present;
	unsigned given;
	uint64_t queues = 0;
	int cache = 0, engine = 0, ret;

	if (!d)
		return log_set_error(-EINVAL, "%s: out of memory", what);
	if ((ret = cj_check_fields(what, obj, known)) ||
	    (ret = cj_id(what, obj, "drive_id", d->id)) ||
	    (ret = cj_path_id(what, "drive_id", d->id, path_id)) ||
	    (ret = cj_unsupported(what, obj, "socket",
				  "vhost-user drives are not supported by skiff")) ||
	    (ret =
		 cj_string(what, obj, "path_on_host", true, d->path, sizeof(d->path), &present)) ||
	    (ret = cj_bool(what, obj, "is_root_device", true, &d->is_root, &present)) ||
	    (ret = cj_bool(what, obj, "is_read_only", false, &d->read_only, &present)) ||
	    (ret = cj_string(what, obj, "partuuid", false, d->partuuid, sizeof(d->partuuid),
			     &present)) ||
	    (ret = cj_enum(what, obj, "cache_type", cache_types, false, &cache, &present)) ||
	    (ret = cj_enum(what, obj, "io_engine", io_engines, false, &engine, &present)) ||
	    (ret = cj_rate_limiter(what, obj, "rate_limiter", &d->rate_limiter, &given)) ||
	    (ret = cj_uint(what, obj, "num_queues", false, 1, DISK_MAX_QUEUES, &queues, &present)))
		goto out;
	d->num_queues = (unsigned)queues;
	/* It goes on the kernel command line: no spaces or other parameters smuggled in. */
	if (!partuuid_valid(d->partuuid)) {
		ret = log_set_error(-EINVAL, "field 'partuuid' in %s must be hex digits and '-'",
				    what);
		goto out;
	}
	d->cache_type = cache ? DISK_CACHE_WRITEBACK : DISK_CACHE_UNSAFE;
	d->io_engine = engine ? DISK_IO_ASYNC : DISK_IO_SYNC;
	/* Through the API, checked now, as Firecracker does, not only at InstanceStart. */
	if (t->check_files && (ret = vm_config_check_file("drive", d->path, true, !d->read_only)))
		goto out;
	ret = vm_config_put_disk(t->vm, d);
out:
	free(d);
	return ret;
}

static json_t *drive_json(const struct disk_config *d)
{
	/* num_queues only when given: a drive without it reads as Firecracker's. */
	return json_pack("{s:s, s:s?, s:b, s:s, s:b, s:s, s:o, s:s, s:o*}", "drive_id", d->id,
			 "partuuid", d->partuuid[0] ? d->partuuid : NULL, "is_root_device",
			 d->is_root, "cache_type",
			 d->cache_type == DISK_CACHE_WRITEBACK ? "Writeback" : "Unsafe",
			 "is_read_only", d->read_only, "path_on_host", d->path, "rate_limiter",
			 cj_rate_limiter_dump(&d->rate_limiter), "io_engine",
			 d->io_engine == DISK_IO_ASYNC ? "Async" : "Sync", "num_queues",
			 d->num_queues ? json_integer(d->num_queues) : NULL);
}

static json_t *dump(const struct vm_config *cfg)
{
	json_t *drives = json_array();

	for (int i = 0; drives && i < cfg->nr_disks; i++) {
		if (json_array_append_new(drives, drive_json(&cfg->disks[i]))) {
			json_decref(drives);
			return NULL;
		}
	}
	return drives;
}

int config_json_drive(struct vm_config *cfg, const char *path_id, const char *body, size_t len)
{
	return config_resource_put(&drive_resource, cfg, path_id, body, len);
}

int config_json_drive_update(const struct vm_config *cfg, const char *path_id, const char *body,
			     size_t len, struct drive_update *out)
{
	static const char *const known[] = {"drive_id", "path_on_host", "rate_limiter", NULL};
	const char *what = "drive";
	json_t *obj = cj_parse_object(body, len, what);
	struct drive_update *u;
	bool present;
	int i, ret;

	if (!obj)
		return -EINVAL;
	u = calloc(1, sizeof(*u));
	if (!u) {
		json_decref(obj);
		return log_set_error(-EINVAL, "drive: out of memory");
	}
	if ((ret = cj_check_fields(what, obj, known)) ||
	    (ret = cj_id(what, obj, "drive_id", u->drive_id)) ||
	    (ret = cj_path_id(what, "drive_id", u->drive_id, path_id)) ||
	    (ret = cj_string(what, obj, "path_on_host", false, u->path_on_host,
			     sizeof(u->path_on_host), &present)))
		goto out;
	if ((i = find_disk(cfg, u->drive_id)) < 0) {
		ret = log_set_error(-EINVAL, "drive %s does not exist", u->drive_id);
		goto out;
	}
	/* What the body does not name stays as it is. */
	u->rate_limiter = cfg->disks[i].rate_limiter;
	if ((ret = cj_rate_limiter(what, obj, "rate_limiter", &u->rate_limiter,
				   &u->rate_limiter_given)))
		goto out;
	*out = *u;
out:
	free(u);
	json_decref(obj);
	return ret;
}

static int count(const struct vm_config *cfg)
{
	return cfg->nr_disks;
}

const struct config_resource drive_resource = {
    .name = "drives",
    .shape = CONFIG_ARRAY,
    .in_full_config = true,
    .object_name = "drive",
    .api_path = "/drives/",
    .apply = apply,
    .dump = dump,
    .option = "disk",
    .option_arg = true,
    .option_help = "  --disk PATH[,ro][,id=NAME][,bw=SIZE/MS][,ops=N/MS][,num_queues=N]\n"
		   "                         a raw disk image as virtio-blk; repeatable; bw= and\n"
		   "                         ops= rate-limit it (docs/rate-limiters.md);\n"
		   "                         num_queues= request queues (1 to the vCPU count)\n",
    .option_label = "--disk",
    .parse_option = vm_config_add_disk,
    .count = count,
    .validate = validate,
};
