#include "config/vm_config.h"
#include "base/log.h"
#include "config/resource.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

void vm_config_init_defaults(struct vm_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->nr_cpus = VM_CONFIG_DEFAULT_CPUS;
	cfg->memory_mib = VM_CONFIG_DEFAULT_MEMORY_MIB;
	cfg->boot_protocol = BOOT_PROTOCOL_AUTO;
}

/* Points `field` at the same string in dst's buffer when it pointed into src's. */
static void repoint(const char **field, const char *src_buf, char *dst_buf)
{
	if (*field == src_buf)
		*field = dst_buf;
}

void vm_config_copy(struct vm_config *dst, const struct vm_config *src)
{
	if (dst == src)
		return;
	memcpy(dst, src, sizeof(*dst));
	repoint(&dst->kernel_path, src->kernel_path_buf, dst->kernel_path_buf);
	repoint(&dst->initrd_path, src->initrd_path_buf, dst->initrd_path_buf);
	repoint(&dst->cmdline, src->cmdline_buf, dst->cmdline_buf);
}

static bool fits(const char *s, size_t size)
{
	return !s || strlen(s) < size;
}

int vm_config_set_boot_source(struct vm_config *cfg, const char *kernel, const char *initrd,
			      const char *cmdline)
{
	if (!kernel || !fits(kernel, sizeof(cfg->kernel_path_buf)) ||
	    !fits(initrd, sizeof(cfg->initrd_path_buf)) || !fits(cmdline, sizeof(cfg->cmdline_buf)))
		return -EINVAL;
	/* memmove: an argument may be the buffer it is copied into. */
	memmove(cfg->kernel_path_buf, kernel, strlen(kernel) + 1);
	cfg->kernel_path = cfg->kernel_path_buf;
	cfg->initrd_path = NULL;
	if (initrd) {
		memmove(cfg->initrd_path_buf, initrd, strlen(initrd) + 1);
		cfg->initrd_path = cfg->initrd_path_buf;
	}
	cfg->cmdline = NULL;
	if (cmdline) {
		memmove(cfg->cmdline_buf, cmdline, strlen(cmdline) + 1);
		cfg->cmdline = cfg->cmdline_buf;
	}
	return 0;
}

int vm_config_check_file(const char *what, const char *path, bool block_ok, bool writable)
{
	struct statfs fs;
	struct stat st;

	/* stat(), not open(): a FIFO must not make the check wait for a writer. */
	if (stat(path, &st) != 0)
		return log_set_error(-EINVAL, "%s %s: %s", what, path, strerror(errno));
	if (!S_ISREG(st.st_mode) && !(block_ok && S_ISBLK(st.st_mode)))
		return log_set_error(-EINVAL, "%s %s: not a regular file%s", what, path,
				     block_ok ? " or a block device" : "");
	/* /proc/self/mem and the like are regular files that are not images of anything. */
	if (statfs(path, &fs) == 0 && (fs.f_type == PROC_SUPER_MAGIC || fs.f_type == SYSFS_MAGIC))
		return log_set_error(-EINVAL, "%s %s: a file of /proc or /sys, not an image", what,
				     path);
	if (access(path, writable ? R_OK | W_OK : R_OK) != 0)
		return log_set_error(-EINVAL, "%s %s: %s%s", what, path, strerror(errno),
				     writable && errno == EACCES ? " (add ,ro for a read-only disk)"
								 : "");
	return 0;
}

bool vm_config_id_valid(const char *id)
{
	size_t n = strlen(id);

	if (n == 0 || n > VM_CONFIG_MAX_ID)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)id[i]) && id[i] != '_' && id[i] != '-')
			return false;
	return true;
}

const char *vm_config_setting_name(const struct vm_config *cfg, enum vm_config_setting s)
{
	static const char *const names[VM_SETTINGS][2] = {
	    [VM_SETTING_CPUS] = {"--cpus", "vcpu_count"},
	    [VM_SETTING_MEMORY] = {"--memory", "mem_size_mib"},
	    [VM_SETTING_PCI] = {"--enable-pci", "enable_pci"},
	};

	return names[s][cfg->origin[s] == VM_ORIGIN_JSON];
}

const char *vm_config_describe(const struct vm_config *cfg, enum vm_config_setting s, char *out,
			       size_t len)
{
	enum vm_config_origin o = cfg->origin[s];
	const char *name = vm_config_setting_name(cfg, s);

	switch (s) {
	case VM_SETTING_CPUS:
		if (o == VM_ORIGIN_DEFAULT)
			snprintf(out, len, "%d vCPUs (the default)", cfg->nr_cpus);
		else
			snprintf(out, len, "%s %d", name, cfg->nr_cpus);
		break;
	case VM_SETTING_MEMORY:
		if (o == VM_ORIGIN_DEFAULT)
			snprintf(out, len, "%llu MiB of memory (the default)",
				 (unsigned long long)cfg->memory_mib);
		else
			snprintf(out, len, o == VM_ORIGIN_JSON ? "%s %llu" : "%s %llu MiB", name,
				 (unsigned long long)cfg->memory_mib);
		break;
	default:
		snprintf(out, len, o == VM_ORIGIN_JSON ? "%s %s" : "%s", name,
			 cfg->enable_pci ? "true" : "false");
		break;
	}
	return out;
}

/* Every device kind's checks, after the one they share: virtio devices need a guest that can
 * drive them, a Linux kernel or a bare-metal --raw guest (which polls them: it has no interrupt
 * controller), not the built-in demo guest. */
static int validate_devices(const struct vm_config *cfg)
{
	char labels[256] = "";
	bool any = false;
	int ret;

	for (const struct config_resource *const *r = config_resources; *r; r++) {
		if (!(*r)->count)
			continue;
		snprintf(labels + strlen(labels), sizeof(labels) - strlen(labels), "%s%s",
			 labels[0] ? ", " : "", (*r)->option_label);
		any |= (*r)->count(cfg) > 0;
	}
	if (!cfg->kernel_path && !cfg->raw_path && !cfg->firmware_path && !cfg->restored && any)
		return log_set_error(-EINVAL, "virtio devices (%s) need --kernel or --raw", labels);
	for (const struct config_resource *const *r = config_resources; *r; r++)
		if ((*r)->validate && (ret = (*r)->validate(cfg)))
			return ret;
	return 0;
}

int vm_config_validate(const struct vm_config *cfg, int max_cpus, uint64_t host_mib)
{
	char cpus[64], memory[64];
	int ret;

	vm_config_describe(cfg, VM_SETTING_CPUS, cpus, sizeof(cpus));
	vm_config_describe(cfg, VM_SETTING_MEMORY, memory, sizeof(memory));
	if (cfg->kernel_path && (cfg->raw_path || cfg->raw_image))
		return log_set_error(-EINVAL, "--kernel and --raw are mutually exclusive");
	if (cfg->firmware_path && (cfg->raw_path || cfg->raw_image))
		return log_set_error(-EINVAL, "--firmware and --raw are mutually exclusive");
	if (!cfg->kernel_path && (cfg->initrd_path || cfg->cmdline))
		return log_set_error(-EINVAL, "--initrd and --cmdline need --kernel");
	if (!cfg->kernel_path && cfg->boot_protocol != BOOT_PROTOCOL_AUTO)
		return log_set_error(-EINVAL, "--boot-protocol needs --kernel");
	if (cfg->kernel_path && !cfg->restored &&
	    (ret = vm_config_check_file("kernel", cfg->kernel_path, false, false)))
		return ret;
	if (cfg->initrd_path && !cfg->restored &&
	    (ret = vm_config_check_file("initrd", cfg->initrd_path, false, false)))
		return ret;
	if (cfg->raw_path && (ret = vm_config_check_file("raw image", cfg->raw_path, false, false)))
		return ret;
	if (cfg->cmdline && strlen(cfg->cmdline) >= VM_CONFIG_MAX_CMDLINE - 32)
		return log_set_error(-EINVAL, "--cmdline is %zu bytes; the limit is %d",
				     strlen(cfg->cmdline), VM_CONFIG_MAX_CMDLINE - 32);

	if (cfg->nr_cpus < 1)
		return log_set_error(-EINVAL, "%s must be at least 1",
				     vm_config_setting_name(cfg, VM_SETTING_CPUS));
	if (cfg->nr_cpus > 254)
		return log_set_error(-EINVAL, "%s: skiff supports at most 254 vCPUs (xAPIC IDs)",
				     cpus);
	if (cfg->raw_path && cfg->nr_cpus != 1)
		return log_set_error(-EINVAL, "bare-metal (--raw) guests run on exactly one vCPU");
	if (cfg->raw_image && cfg->nr_cpus != 1)
		return log_set_error(-EINVAL,
				     "the built-in demo guest runs on exactly one vCPU; "
				     "%s needs --kernel",
				     cpus);
	if (max_cpus > 0 && cfg->nr_cpus > max_cpus)
		return log_set_error(-EINVAL, "%s: this host's KVM allows at most %d vCPUs", cpus,
				     max_cpus);

	if (cfg->memory_mib < 16)
		return log_set_error(-EINVAL, "%s: at least 16 MiB are needed", memory);
	if (cfg->memory_mib > (1ULL << 30))
		return log_set_error(-EINVAL, "%s is beyond what skiff can map", memory);
	if (host_mib && cfg->memory_mib > host_mib)
		return log_set_error(-EINVAL, "%s is more than this host's %llu MiB of RAM", memory,
				     (unsigned long long)host_mib);
	return validate_devices(cfg);
}

/* Whether `cmdline` has a parameter starting with `key` ("console=", "root=") before `end`. */
static bool cmdline_has(const char *cmdline, const char *end, const char *key)
{
	const char *p = cmdline;

	while ((p = strstr(p, key)) != NULL && p < end) {
		if (p == cmdline || p[-1] == ' ')
			return true;
		p++;
	}
	return false;
}

/* Where the arguments for init start: the " --" or "--" word, or the end. */
static const char *cmdline_init_args(const char *cmdline)
{
	const char *p = cmdline;

	while ((p = strstr(p, "--")) != NULL) {
		if ((p == cmdline || p[-1] == ' ') && (p[2] == ' ' || p[2] == '\0'))
			return p > cmdline ? p - 1 : p;
		p += 2;
	}
	return cmdline + strlen(cmdline);
}

int vm_config_kernel_cmdline(const struct vm_config *cfg, char *out, size_t len)
{
	const char *user = cfg->cmdline ? cfg->cmdline : "";
	const char *init = cmdline_init_args(user);
	const struct disk_config *root =
	    cfg->nr_disks && cfg->disks[0].is_root ? &cfg->disks[0] : NULL;
	char extra[VM_CONFIG_MAX_PARTUUID + 64] = ""; /* each part with a space before it */
	const char *ex = extra;
	size_t head = (size_t)(init - user);
	int n;

	if (!cmdline_has(user, init, "console="))
		snprintf(extra, sizeof(extra), " console=%s",
			 cfg->console == CONSOLE_VIRTIO ? "hvc0" : "ttyS0");
	if (root && !cmdline_has(user, init, "root="))
		snprintf(extra + strlen(extra), sizeof(extra) - strlen(extra), " root=%s%s %s",
			 root->partuuid[0] ? "PARTUUID=" : "/dev/vda", root->partuuid,
			 root->read_only ? "ro" : "rw");
	if (head == 0 && *ex == ' ')
		ex++;
	/* init == user: the line starts with "--", which needs a space after what goes first. */
	n = snprintf(out, len, "%.*s%s%s%s", (int)head, user, ex,
		     head == 0 && *ex && *init ? " " : "", init);
	return n < 0 || (size_t)n >= len ? -E2BIG : 0;
}

uint64_t host_memory_mib(void)
{
	FILE *f = fopen("/proc/meminfo", "re");
	unsigned long long kib = 0;
	char line[256];

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "MemTotal: %llu kB", &kib) == 1)
			break;
	fclose(f);
	return kib / 1024;
}

int vm_config_parse_queues(const char *option, const char *spec, const char *key, const char *v,
			   unsigned max, unsigned *out)
{
	char *end;
	unsigned long n;

	errno = 0;
	n = strtoul(v, &end, 10);
	if (!isdigit((unsigned char)v[0]) || *end || errno || n < 1 || n > max)
		return log_set_error(-EINVAL, "%s %s: %s=%s: expected 1 to %u", option, spec, key, v,
				     max);
	*out = (unsigned)n;
	return 0;
}
