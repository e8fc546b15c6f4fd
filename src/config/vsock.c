/* virtio-vsock (Firecracker's hybrid vsock): --vsock cid=N,uds=PATH, the "vsock" section and
 * PUT /vsock ({"guest_cid", "uds_path", "vsock_id"}), and its checks. */
#include "config/json_fields.h"
#include "config/resource.h"
#include "base/log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define VSOCK_MIN_CID 3		 /* 0 hypervisor, 1 loopback, 2 the host */
#define VSOCK_MAX_CID 0xfffffffe /* 0xffffffff is VMADDR_CID_ANY */

/* True when something accepts connections on the unix socket at `path`. */
static bool socket_is_live(const char *path)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	bool live;

	if (fd < 0)
		return false;
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	/* A full backlog (EAGAIN) is a live listener too. */
	live = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0 || errno == EAGAIN;
	close(fd);
	return live;
}

int vm_config_check_vsock_path(const char *what, const char *path)
{
	char dir[VM_CONFIG_VSOCK_MAX_PATH + 1];
	const char *slash;
	struct stat st;

	if (!path[0])
		return log_set_error(-EINVAL, "%s: uds_path is empty", what);
	if (strlen(path) > VM_CONFIG_VSOCK_MAX_PATH)
		return log_set_error(-EINVAL,
				     "%s: uds_path is %zu bytes long; at most %d (a unix socket "
				     "path, with room for the guest's \"_PORT\" sockets)",
				     what, strlen(path), VM_CONFIG_VSOCK_MAX_PATH);
	slash = strrchr(path, '/');
	if (slash && slash != path) {
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
		if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
			return log_set_error(-EINVAL,
					     "%s: uds_path %s: directory %s does not exist", what,
					     path, dir);
	}
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			return log_set_error(-EINVAL, "%s: uds_path %s exists and is not a socket",
					     what, path);
		if (socket_is_live(path))
			return log_set_error(-EINVAL,
					     "%s: uds_path %s is a socket something listens on "
					     "(another VM's?)",
					     what, path);
	}
	return 0;
}

/* `what` names the setting as its caller wrote it: "vsock: guest_cid", "--vsock cid=". */
static int check_cid(const char *what, uint64_t cid)
{
	if (cid < VSOCK_MIN_CID || cid > VSOCK_MAX_CID)
		return log_set_error(-EINVAL,
				     "%s%llu: a guest's CID is 3 to 4294967294 (0 to 2 are the "
				     "hypervisor, loopback and the host)",
				     what, (unsigned long long)cid);
	return 0;
}

/* --- the command line --- */

static int parse_option(struct vm_config *cfg, const char *spec)
{
	struct vsock_config v = {.enabled = true};
	bool has_cid = false;
	char buf[256];
	char *fields[4];
	int n;

	if (cfg->vsock.enabled)
		return log_set_error(-EINVAL, "--vsock %s: a VM has one vsock device", spec);
	if (config_copy_field(buf, sizeof(buf), spec) ||
	    (n = config_split_fields(buf, fields, 4)) < 1)
		return log_set_error(-EINVAL, "--vsock %s: expected cid=N,uds=PATH", spec);
	for (int i = 0; i < n; i++) {
		const char *f = fields[i];

		if (strncmp(f, "cid=", 4) == 0) {
			char *end;
			unsigned long long cid;

			errno = 0;
			cid = strtoull(f + 4, &end, 10);
			if (!f[4] || *end || errno || f[4] == '-' || f[4] == '+')
				return log_set_error(-EINVAL, "--vsock %s: cid=%s is not a number",
						     spec, f + 4);
			if (check_cid("--vsock cid=", cid))
				return -EINVAL;
			v.guest_cid = (uint32_t)cid;
			has_cid = true;
		} else if (strncmp(f, "uds=", 4) == 0) {
			if (strlen(f + 4) > VM_CONFIG_VSOCK_MAX_PATH || !f[4])
				return log_set_error(-EINVAL,
						     "--vsock %s: uds=PATH is 1 to %d bytes", spec,
						     VM_CONFIG_VSOCK_MAX_PATH);
			strcpy(v.uds_path, f + 4);
		} else {
			return log_set_error(-EINVAL,
					     "--vsock %s: unknown option '%s' (expected cid= or "
					     "uds=)",
					     spec, f);
		}
	}
	if (!has_cid || !v.uds_path[0])
		return log_set_error(-EINVAL, "--vsock %s: both cid=N and uds=PATH are needed",
				     spec);
	cfg->vsock = v;
	return 0;
}

/* --- JSON --- */

static int apply(const struct config_target *t, const char *path_id, json_t *obj, const char *what)
{
	static const char *const known[] = {"guest_cid", "uds_path", "vsock_id", NULL};
	struct vsock_config v = {.enabled = true};
	char prefix[64];
	uint64_t cid;
	bool present;
	int ret;

	snprintf(prefix, sizeof(prefix), "%s: guest_cid ", what);
	if ((ret = cj_check_fields(what, obj, known)) ||
	    (ret = cj_uint(what, obj, "guest_cid", true, 0, UINT32_MAX, &cid, &present)) ||
	    (ret = check_cid(prefix, cid)) ||
	    (ret = cj_string(what, obj, "uds_path", true, v.uds_path, sizeof(v.uds_path),
			     &present)) ||
	    (ret = cj_string(what, obj, "vsock_id", false, v.id, sizeof(v.id), &present)))
		return ret;
	if (present && !vm_config_id_valid(v.id))
		return log_set_error(-EINVAL,
				     "field 'vsock_id' in %s must be 1 to %d letters, digits, '_' "
				     "or '-'",
				     what, VM_CONFIG_MAX_ID);
	if (t->check_files && (ret = vm_config_check_vsock_path(what, v.uds_path)))
		return ret;
	v.guest_cid = (uint32_t)cid;
	t->vm->vsock = v;
	return 0;
}

static json_t *dump(const struct vm_config *cfg)
{
	const struct vsock_config *v = &cfg->vsock;

	if (!v->enabled)
		return json_null();
	/* vsock_id only when it was given (Firecracker's is optional and deprecated). */
	if (v->id[0])
		return json_pack("{s:I, s:s, s:s}", "guest_cid", (json_int_t)v->guest_cid,
				 "uds_path", v->uds_path, "vsock_id", v->id);
	return json_pack("{s:I, s:s}", "guest_cid", (json_int_t)v->guest_cid, "uds_path",
			 v->uds_path);
}

static int count(const struct vm_config *cfg)
{
	return cfg->vsock.enabled ? 1 : 0;
}

static int validate(const struct vm_config *cfg)
{
	if (!cfg->vsock.enabled)
		return 0;
	if (check_cid("vsock: guest_cid ", cfg->vsock.guest_cid))
		return -EINVAL;
	return vm_config_check_vsock_path("vsock", cfg->vsock.uds_path);
}

const struct config_resource vsock_resource = {
    .name = "vsock",
    .shape = CONFIG_OBJECT,
    .in_full_config = true,
    .object_name = "vsock",
    .api_path = "/vsock",
    .apply = apply,
    .dump = dump,
    .option = "vsock",
    .option_arg = true,
    .option_help =
	"  --vsock cid=N,uds=PATH\n"
	"                         virtio-vsock: host programs reach the guest through\n"
	"                         PATH (\"CONNECT <port>\"), the guest reaches PATH_<port>\n",
    .option_label = "--vsock",
    .parse_option = parse_option,
    .count = count,
    .validate = validate,
};
