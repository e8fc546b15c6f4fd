#include "config/vm_config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

void vm_config_init_defaults(struct vm_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->nr_cpus = VM_CONFIG_DEFAULT_CPUS;
	cfg->memory_mib = VM_CONFIG_DEFAULT_MEMORY_MIB;
	cfg->boot_protocol = BOOT_PROTOCOL_AUTO;
}

static int fail(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static int check_readable(const char *what, const char *path, char *err, size_t len)
{
	if (access(path, R_OK) != 0)
		return fail(err, len, "%s %s: %s", what, path, strerror(errno));
	return 0;
}

int vm_config_validate(const struct vm_config *cfg, int max_cpus, uint64_t host_mib, char *err,
		       size_t err_len)
{
	int ret;

	if (cfg->kernel_path && (cfg->raw_path || cfg->raw_image))
		return fail(err, err_len, "--kernel and --raw are mutually exclusive");
	if (!cfg->kernel_path && (cfg->initrd_path || cfg->cmdline))
		return fail(err, err_len, "--initrd and --cmdline need --kernel");
	if (!cfg->kernel_path && cfg->boot_protocol != BOOT_PROTOCOL_AUTO)
		return fail(err, err_len, "--boot-protocol needs --kernel");
	if (cfg->kernel_path && (ret = check_readable("kernel", cfg->kernel_path, err, err_len)))
		return ret;
	if (cfg->initrd_path && (ret = check_readable("initrd", cfg->initrd_path, err, err_len)))
		return ret;
	if (cfg->raw_path && (ret = check_readable("raw image", cfg->raw_path, err, err_len)))
		return ret;
	if (cfg->cmdline && strlen(cfg->cmdline) >= VM_CONFIG_MAX_CMDLINE - 32)
		return fail(err, err_len, "--cmdline is %zu bytes; the limit is %d",
			    strlen(cfg->cmdline), VM_CONFIG_MAX_CMDLINE - 32);

	if (cfg->nr_cpus < 1)
		return fail(err, err_len, "--cpus must be at least 1");
	if (cfg->nr_cpus > 254)
		return fail(err, err_len, "--cpus %d: skiff supports at most 254 vCPUs (xAPIC IDs)",
			    cfg->nr_cpus);
	if ((cfg->raw_path || cfg->raw_image) && cfg->nr_cpus != 1)
		return fail(err, err_len, "bare-metal (--raw) guests run on exactly one vCPU");
	if (max_cpus > 0 && cfg->nr_cpus > max_cpus)
		return fail(err, err_len, "--cpus %d: this host's KVM allows at most %d vCPUs",
			    cfg->nr_cpus, max_cpus);

	if (cfg->memory_mib < 16)
		return fail(err, err_len, "--memory %llu MiB: at least 16 MiB are needed",
			    (unsigned long long)cfg->memory_mib);
	if (cfg->memory_mib > (1ULL << 30))
		return fail(err, err_len, "--memory %llu MiB is beyond what skiff can map",
			    (unsigned long long)cfg->memory_mib);
	if (host_mib && cfg->memory_mib > host_mib)
		return fail(err, err_len, "--memory %llu MiB is more than this host's %llu MiB of RAM",
			    (unsigned long long)cfg->memory_mib, (unsigned long long)host_mib);
	return 0;
}

static bool cmdline_has_console(const char *cmdline)
{
	const char *p = cmdline;

	while ((p = strstr(p, "console=")) != NULL) {
		if (p == cmdline || p[-1] == ' ')
			return true;
		p++;
	}
	return false;
}

int vm_config_kernel_cmdline(const struct vm_config *cfg, char *out, size_t len)
{
	const char *user = cfg->cmdline ? cfg->cmdline : "";
	int n;

	if (cmdline_has_console(user))
		n = snprintf(out, len, "%s", user);
	else
		n = snprintf(out, len, "%s%sconsole=ttyS0", user, *user ? " " : "");
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
