/* skiff-jailer's command line: Firecracker's jailer arguments, then "--" and the jailed
 * program's own. jail_args_parse() checks everything that can be checked without changing the
 * host (the id, the exec file is a regular file, the netns handle exists, the cgroup settings
 * and limits are well formed) and returns 0, 1 for --help or --version (printed), or a negative
 * errno with the reason in jail_last_error(): a usage error, exit status 2. The strings point
 * into argv, which must outlive the struct. */
#ifndef SKIFF_JAILER_ARGS_H
#define SKIFF_JAILER_ARGS_H

#include <stdbool.h>
#include <sys/resource.h>
#include <sys/types.h>

#define JAIL_ID_MAX	 64
#define JAIL_MAX_CGROUPS 32

struct jail_cgroup_setting {
	const char *key;   /* a file of the cgroup, "memory.max" */
	const char *value; /* what is written to it */
};

struct jail_args {
	const char *id;
	const char *exec_file;
	const char *exec_name; /* exec_file's last component: the jail's directory and binary */
	const char *chroot_base;
	const char *netns;	   /* NULL: stay in the jailer's network namespace */
	const char *parent_cgroup; /* relative to the cgroup v2 root; default exec_name */
	uid_t uid;
	gid_t gid;
	bool daemonize;
	bool new_pid_ns;
	bool cgroup_wanted; /* --cgroup or --parent-cgroup given: the process joins <parent>/<id> */
	int n_cgroups;
	struct jail_cgroup_setting cgroups[JAIL_MAX_CGROUPS];
	bool fsize_set, nofile_set;
	rlim_t fsize, nofile;
	char **exec_argv; /* the arguments after "--" (may be none), NULL-terminated */
	int exec_argc;
};

int jail_args_parse(int argc, char **argv, struct jail_args *a);

/* The one-screen usage text (--help). */
extern const char jail_usage[];

#endif
