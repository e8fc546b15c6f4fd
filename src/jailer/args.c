#include "jailer/args.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "jailer/fail.h"
#include "version.h"

const char jail_usage[] =
    "usage: skiff-jailer --id ID --exec-file PATH --uid UID --gid GID [OPTIONS] [-- ARGS...]\n"
    "Builds a chroot jail <chroot-base>/<exec-file name>/<id>/root, enters it in a new mount\n"
    "namespace and execs the program there as UID:GID with no capabilities.\n"
    "  --id ID                    the jail's name: letters, digits and '-', at most 64\n"
    "  --exec-file PATH           the program to run (a regular file; copied into the jail)\n"
    "  --uid UID, --gid GID       whom the program runs as\n"
    "  --chroot-base-dir DIR      where jails are built (default /srv/jailer)\n"
    "  --netns PATH               join this network namespace (e.g. /var/run/netns/NAME)\n"
    "  --daemonize                detach: new session, stdio on /dev/null, the jailer returns\n"
    "  --new-pid-ns               run the program as pid 1 of a new PID namespace\n"
    "  --cgroup-version 2         cgroup v2 (the only one supported)\n"
    "  --cgroup FILE=VALUE        write VALUE to the jail's cgroup FILE (repeatable)\n"
    "  --parent-cgroup PATH       the jail's cgroup is PATH/ID (default: the exec-file name)\n"
    "  --resource-limit fsize=N|no-file=N   an rlimit (repeatable; default no-file=2048)\n"
    "  --help, --version\n"
    "Everything after -- is the program's own arguments. See skiff-jailer(1).\n";

static int parse_u32(const char *opt, const char *s, uint32_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	if (*s < '0' || *s > '9')
		return jail_fail(EINVAL, "%s wants a number, not '%s'", opt, s);
	v = strtoull(s, &end, 10);
	if (errno || *end || v >= UINT32_MAX)
		return jail_fail(EINVAL, "%s wants a number below 4294967295, not '%s'", opt, s);
	*out = (uint32_t)v;
	return 0;
}

static int check_id(const char *id)
{
	size_t n = strlen(id);

	if (n == 0 || n > JAIL_ID_MAX)
		return jail_fail(EINVAL, "--id must be 1 to %d characters, not %zu", JAIL_ID_MAX,
				 n);
	for (const char *p = id; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '-'))
			return jail_fail(EINVAL,
					 "--id '%s': only letters, digits and '-' are allowed", id);
	return 0;
}

/* A path below another, given by the user: relative, no "." or ".." component, no "//". */
static bool plain_relative_path(const char *p)
{
	const char *c = p;

	if (*p == '\0' || *p == '/')
		return false;
	while (*c) {
		size_t n = strcspn(c, "/");

		if (n == 0 || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
			return false;
		c += n;
		if (*c == '/')
			c++;
		if (*c == '\0' && c[-1] == '/')
			return false;
	}
	return true;
}

/* FILE=VALUE: FILE is a cgroup interface file name, "controller.name", no '/'. */
static int parse_cgroup(struct jail_args *a, char *s)
{
	char *eq = strchr(s, '=');
	const char *dot;

	if (!eq || eq == s || !eq[1])
		return jail_fail(EINVAL,
				 "--cgroup wants FILE=VALUE (e.g. memory.max=512M), not '%s'", s);
	*eq = '\0';
	dot = strchr(s, '.');
	if (!dot || dot == s || !dot[1] ||
	    strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_.") != strlen(s)) {
		*eq = '=';
		return jail_fail(EINVAL, "--cgroup '%s': FILE is a cgroup file such as memory.max",
				 s);
	}
	if (strchr(eq + 1, '\n')) {
		*eq = '=';
		return jail_fail(EINVAL, "--cgroup %s: the value has a newline", s);
	}
	if (a->n_cgroups == JAIL_MAX_CGROUPS)
		return jail_fail(EINVAL, "at most %d --cgroup settings", JAIL_MAX_CGROUPS);
	a->cgroups[a->n_cgroups].key = s;
	a->cgroups[a->n_cgroups].value = eq + 1;
	a->n_cgroups++;
	return 0;
}

static int parse_limit(struct jail_args *a, const char *s)
{
	const char *eq = strchr(s, '=');
	unsigned long long v;
	char *end;

	if (!eq || eq[1] < '0' || eq[1] > '9')
		return jail_fail(EINVAL, "--resource-limit wants fsize=N or no-file=N, not '%s'",
				 s);
	errno = 0;
	v = strtoull(eq + 1, &end, 10);
	if (errno || *end || v == RLIM_INFINITY)
		return jail_fail(EINVAL, "--resource-limit %s: not a number of bytes or files", s);
	if ((size_t)(eq - s) == 5 && strncmp(s, "fsize", 5) == 0) {
		a->fsize = v;
		a->fsize_set = true;
	} else if ((size_t)(eq - s) == 7 && strncmp(s, "no-file", 7) == 0) {
		if (v < 4)
			return jail_fail(EINVAL, "--resource-limit %s: a program needs more files",
					 s);
		a->nofile = v;
		a->nofile_set = true;
	} else {
		return jail_fail(EINVAL,
				 "--resource-limit %.*s: the resources are fsize and no-file",
				 (int)(eq - s), s);
	}
	return 0;
}

/* The options that take a value, in the order of --help. */
enum opt {
	OPT_ID,
	OPT_EXEC_FILE,
	OPT_UID,
	OPT_GID,
	OPT_CHROOT_BASE,
	OPT_NETNS,
	OPT_CGROUP_VERSION,
	OPT_CGROUP,
	OPT_PARENT_CGROUP,
	OPT_RESOURCE_LIMIT,
	OPT_COUNT
};
static const char *const opt_names[OPT_COUNT] = {
    "--id",    "--exec-file",	   "--uid",    "--gid",		  "--chroot-base-dir",
    "--netns", "--cgroup-version", "--cgroup", "--parent-cgroup", "--resource-limit",
};

static int set_value(struct jail_args *a, enum opt o, char *v, bool *seen)
{
	const char *name = opt_names[o];
	uint32_t n;
	int ret;

	if (seen[o] && o != OPT_CGROUP && o != OPT_RESOURCE_LIMIT)
		return jail_fail(EINVAL, "%s given twice", name);
	seen[o] = true;
	switch (o) {
	case OPT_ID:
		a->id = v;
		return check_id(v);
	case OPT_EXEC_FILE:
		a->exec_file = v;
		return 0;
	case OPT_UID:
		ret = parse_u32(name, v, &n);
		a->uid = n;
		return ret;
	case OPT_GID:
		ret = parse_u32(name, v, &n);
		a->gid = n;
		return ret;
	case OPT_CHROOT_BASE:
		if (v[0] != '/')
			return jail_fail(EINVAL,
					 "--chroot-base-dir wants an absolute path, not '%s'", v);
		a->chroot_base = v;
		return 0;
	case OPT_NETNS:
		a->netns = v;
		return 0;
	case OPT_CGROUP_VERSION:
		if (strcmp(v, "2") == 0)
			return 0;
		if (strcmp(v, "1") == 0)
			return jail_fail(EINVAL,
					 "--cgroup-version 1: skiff-jailer supports cgroup v2 "
					 "only");
		return jail_fail(EINVAL, "--cgroup-version is 2, not '%s'", v);
	case OPT_CGROUP:
		a->cgroup_wanted = true;
		return parse_cgroup(a, v);
	case OPT_PARENT_CGROUP:
		if (!plain_relative_path(v))
			return jail_fail(EINVAL,
					 "--parent-cgroup wants a relative path without '.' "
					 "or '..', not '%s'",
					 v);
		a->parent_cgroup = v;
		a->cgroup_wanted = true;
		return 0;
	case OPT_RESOURCE_LIMIT:
		return parse_limit(a, v);
	case OPT_COUNT:
		break;
	}
	return jail_fail(EINVAL, "internal: option %d", (int)o);
}

static int check_exec_file(struct jail_args *a)
{
	struct stat st;
	const char *slash;

	if (stat(a->exec_file, &st) != 0)
		return jail_fail(errno, "--exec-file %s: %s", a->exec_file, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return jail_fail(EINVAL, "--exec-file %s: not a regular file", a->exec_file);
	slash = strrchr(a->exec_file, '/');
	a->exec_name = slash ? slash + 1 : a->exec_file;
	if (strcmp(a->exec_name, ".") == 0 || strcmp(a->exec_name, "..") == 0)
		return jail_fail(EINVAL, "--exec-file %s: not a file name", a->exec_file);
	return 0;
}

int jail_args_parse(int argc, char **argv, struct jail_args *a)
{
	bool seen[OPT_COUNT] = {false};
	struct stat st;
	int i, ret;

	memset(a, 0, sizeof(*a));
	a->chroot_base = "/srv/jailer";
	for (i = 1; i < argc; i++) {
		char *arg = argv[i], *value = NULL, *eq;
		int o;

		if (strcmp(arg, "--") == 0) {
			i++;
			break;
		}
		if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
			fputs(jail_usage, stdout);
			return 1;
		}
		if (strcmp(arg, "--version") == 0) {
			printf("skiff-jailer %s\n", SKIFF_VERSION);
			return 1;
		}
		if (strcmp(arg, "--daemonize") == 0) {
			a->daemonize = true;
			continue;
		}
		if (strcmp(arg, "--new-pid-ns") == 0) {
			a->new_pid_ns = true;
			continue;
		}
		eq = strncmp(arg, "--", 2) == 0 ? strchr(arg, '=') : NULL;
		for (o = 0; o < OPT_COUNT; o++) {
			size_t n = strlen(opt_names[o]);

			if (strncmp(arg, opt_names[o], n) == 0 &&
			    (arg[n] == '\0' || (eq && arg + n == eq)))
				break;
		}
		if (o == OPT_COUNT) {
			if (strncmp(arg, "-", 1) == 0)
				return jail_fail(EINVAL, "unknown option %s (see --help)", arg);
			return jail_fail(EINVAL,
					 "unexpected argument '%s': the program's own "
					 "arguments go after --",
					 arg);
		}
		if (eq) {
			value = eq + 1;
		} else if (i + 1 < argc) {
			value = argv[++i];
		} else {
			return jail_fail(EINVAL, "%s needs a value", opt_names[o]);
		}
		ret = set_value(a, (enum opt)o, value, seen);
		if (ret)
			return ret;
	}
	a->exec_argv = argv + i;
	a->exec_argc = argc - i;

	for (int o = OPT_ID; o <= OPT_GID; o++)
		if (!seen[o])
			return jail_fail(EINVAL, "%s is required (see --help)", opt_names[o]);
	ret = check_exec_file(a);
	if (ret)
		return ret;
	if (!a->parent_cgroup)
		a->parent_cgroup = a->exec_name;
	if (a->netns && stat(a->netns, &st) != 0)
		return jail_fail(errno, "--netns %s: %s", a->netns, strerror(errno));
	return 0;
}
