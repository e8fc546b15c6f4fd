/* Shared directories (virtio-fs through a vhost-user backend, virtiofsd): --fs
 * tag=NAME,socket=PATH|dir=PATH[,id=NAME], the "fs" section and PUT /fs/{fs_id} ({"fs_id",
 * "tag", "socket" | "shared_dir"}), and their checks. */
#include "config/json_fields.h"
#include "config/resource.h"
#include "base/log.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

/* 1 to 36 bytes (the device's config space holds 36), printable, no spaces or commas (the
 * command line separates its fields with them). */
static bool tag_valid(const char *tag)
{
	size_t n = strlen(tag);

	if (n == 0 || n > VM_CONFIG_MAX_FS_TAG)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isgraph((unsigned char)tag[i]) || tag[i] == ',')
			return false;
	return true;
}

static int check_tag(const char *what, const char *tag)
{
	if (!tag_valid(tag))
		return log_set_error(-EINVAL,
				     "%s: tag \"%s\" must be 1 to %d printable bytes without "
				     "spaces or commas",
				     what, tag, VM_CONFIG_MAX_FS_TAG);
	return 0;
}

/* The backend's socket exists and is a socket; the shared directory exists and is one. */
static int check_paths(const char *what, const struct fs_config *fs)
{
	struct stat st;

	if (fs->socket[0]) {
		if (stat(fs->socket, &st) != 0)
			return log_set_error(-EINVAL, "%s: vhost-user socket %s: %s", what,
					     fs->socket, strerror(errno));
		if (!S_ISSOCK(st.st_mode))
			return log_set_error(-EINVAL, "%s: vhost-user socket %s: not a socket",
					     what, fs->socket);
	} else {
		if (stat(fs->shared_dir, &st) != 0)
			return log_set_error(-EINVAL, "%s: shared directory %s: %s", what,
					     fs->shared_dir, strerror(errno));
		if (!S_ISDIR(st.st_mode))
			return log_set_error(-EINVAL, "%s: shared directory %s: not a directory",
					     what, fs->shared_dir);
	}
	return 0;
}

/* --- the table --- */

static int put_fs(struct vm_config *cfg, const struct fs_config *fs, const char *what)
{
	int i = -1;

	for (int j = 0; j < cfg->nr_fs; j++)
		if (strcmp(cfg->fs[j].id, fs->id) == 0)
			i = j;
	for (int j = 0; j < cfg->nr_fs; j++)
		if (j != i && strcmp(cfg->fs[j].tag, fs->tag) == 0)
			return log_set_error(-EINVAL, "%s: tag \"%s\" is already %s's", what,
					     fs->tag, cfg->fs[j].id);
	if (i < 0) {
		if (cfg->nr_fs == VM_CONFIG_MAX_FS)
			return log_set_error(-ENOSPC, "%s: at most %d shared directories", what,
					     VM_CONFIG_MAX_FS);
		i = cfg->nr_fs++;
	}
	cfg->fs[i] = *fs;
	return 0;
}

/* --- the command line --- */

static int parse_option(struct vm_config *cfg, const char *spec)
{
	struct fs_config fs = {0};
	char what[64];
	char buf[VM_CONFIG_MAX_PATH + 64];
	char *fields[4];
	int n;

	snprintf(what, sizeof(what), "--fs %.40s%s", spec, strlen(spec) > 40 ? "..." : "");
	if (config_copy_field(buf, sizeof(buf), spec) ||
	    (n = config_split_fields(buf, fields, 4)) < 1)
		return log_set_error(-EINVAL,
				     "%s: expected tag=NAME,socket=PATH or tag=NAME,dir=PATH "
				     "[,id=NAME]",
				     what);
	snprintf(fs.id, sizeof(fs.id), "fs%d", cfg->nr_fs);
	for (int i = 0; i < n; i++) {
		const char *f = fields[i];

		if (strncmp(f, "tag=", 4) == 0) {
			if (config_copy_field(fs.tag, sizeof(fs.tag), f + 4) || !tag_valid(f + 4))
				return check_tag(what, f + 4);
		} else if (strncmp(f, "socket=", 7) == 0) {
			if (!f[7] || config_copy_field(fs.socket, sizeof(fs.socket), f + 7))
				return log_set_error(-EINVAL,
						     "%s: socket= needs a path of 1 to %d bytes",
						     what, VM_CONFIG_MAX_SOCKET - 1);
		} else if (strncmp(f, "dir=", 4) == 0) {
			if (!f[4] || config_copy_field(fs.shared_dir, sizeof(fs.shared_dir), f + 4))
				return log_set_error(-EINVAL, "%s: dir= needs a path", what);
		} else if (strncmp(f, "id=", 3) == 0 &&
			   config_copy_field(fs.id, sizeof(fs.id), f + 3) == 0) {
		} else {
			return log_set_error(-EINVAL,
					     "%s: unknown or too long option '%s' (expected tag=, "
					     "socket=, dir= or id=)",
					     what, f);
		}
	}
	if (!fs.tag[0])
		return log_set_error(-EINVAL, "%s: tag=NAME is required", what);
	if (!fs.socket[0] == !fs.shared_dir[0])
		return log_set_error(-EINVAL, "%s: give one of socket=PATH and dir=PATH", what);
	return put_fs(cfg, &fs, what);
}

/* --- checks --- */

static int validate(const struct vm_config *cfg)
{
	int ret;

	for (int i = 0; i < cfg->nr_fs; i++) {
		const struct fs_config *fs = &cfg->fs[i];
		char what[64];

		snprintf(what, sizeof(what), "shared directory %s", fs->id);
		if ((ret = config_check_id("--fs", fs->id)) || (ret = check_tag(what, fs->tag)) ||
		    (ret = check_paths(what, fs)))
			return ret;
		for (int j = 0; j < i; j++) {
			if (strcmp(cfg->fs[j].id, fs->id) == 0)
				return log_set_error(-EINVAL, "two shared directories have id=%s",
						     fs->id);
			if (strcmp(cfg->fs[j].tag, fs->tag) == 0)
				return log_set_error(-EINVAL, "two shared directories have tag %s",
						     fs->tag);
		}
	}
	return 0;
}

/* --- JSON --- */

static int apply(const struct config_target *t, const char *path_id, json_t *obj, const char *what)
{
	static const char *const known[] = {"fs_id", "tag", "socket", "shared_dir", NULL};
	struct fs_config fs = {0};
	char tag[VM_CONFIG_MAX_FS_TAG + 2];
	bool has_socket, has_dir, has_tag;
	int ret;

	if ((ret = cj_check_fields(what, obj, known)) || (ret = cj_id(what, obj, "fs_id", fs.id)) ||
	    (ret = cj_path_id(what, "fs_id", fs.id, path_id)))
		return ret;
	if (cj_field(obj, "tag") && json_is_string(cj_field(obj, "tag")) &&
	    strlen(json_string_value(cj_field(obj, "tag"))) > VM_CONFIG_MAX_FS_TAG)
		return check_tag(what, json_string_value(cj_field(obj, "tag")));
	if ((ret = cj_string(what, obj, "tag", true, tag, sizeof(tag), &has_tag)) ||
	    (ret = check_tag(what, tag)) ||
	    (ret = cj_string(what, obj, "socket", false, fs.socket, sizeof(fs.socket),
			     &has_socket)) ||
	    (ret = cj_string(what, obj, "shared_dir", false, fs.shared_dir, sizeof(fs.shared_dir),
			     &has_dir)))
		return ret;
	strcpy(fs.tag, tag);
	if (has_socket == has_dir)
		return log_set_error(-EINVAL, "%s: give one of 'socket' and 'shared_dir'", what);
	/* Starting virtiofsd means exec, which the API thread's seccomp filter forbids (and a
	 * child would inherit the filter): through the API, the user starts it. */
	if (t->check_files && has_dir)
		return log_set_error(-EINVAL,
				     "%s: 'shared_dir' needs skiff to start virtiofsd, which its "
				     "sandboxed API thread cannot; start virtiofsd and give "
				     "'socket' (or use --fs dir= or --config-file)",
				     what);
	if (t->check_files && (ret = check_paths(what, &fs)))
		return ret;
	return put_fs(t->vm, &fs, what);
}

static json_t *fs_json(const struct fs_config *fs)
{
	return json_pack("{s:s, s:s, s:s?, s:s?}", "fs_id", fs->id, "tag", fs->tag, "socket",
			 fs->socket[0] ? fs->socket : NULL, "shared_dir",
			 fs->shared_dir[0] ? fs->shared_dir : NULL);
}

static json_t *dump(const struct vm_config *cfg)
{
	json_t *all = json_array();

	for (int i = 0; all && i < cfg->nr_fs; i++) {
		if (json_array_append_new(all, fs_json(&cfg->fs[i]))) {
			json_decref(all);
			return NULL;
		}
	}
	return all;
}

static int count(const struct vm_config *cfg)
{
	return cfg->nr_fs;
}

const struct config_resource fs_resource = {
    .name = "fs",
    .shape = CONFIG_ARRAY,
    .in_full_config = true,
    .object_name = "fs",
    .api_path = "/fs/",
    .apply = apply,
    .dump = dump,
    .option = "fs",
    .option_arg = true,
    .option_help = "  --fs tag=NAME,socket=PATH|dir=PATH[,id=NAME]\n"
		   "                         virtio-fs: a host directory the guest mounts as TAG,\n"
		   "                         served by virtiofsd (its vhost-user socket, or skiff\n"
		   "                         starts one on PATH); repeatable\n",
    .option_label = "--fs",
    .parse_option = parse_option,
    .count = count,
    .validate = validate,
};
