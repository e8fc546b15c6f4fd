#include "config/vm_config.h"
#include "arch/arch.h"

#include <ctype.h>
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

/* Ids name drives and interfaces in logs and (for disks) become the guest-visible serial. */
static int check_id(const char *what, const char *id, char *err, size_t len)
{
	size_t n = strlen(id);

	if (n == 0 || n > VM_CONFIG_MAX_ID)
		return fail(err, len, "%s id=%s: an id is 1 to %d characters", what, id,
			    VM_CONFIG_MAX_ID);
	if (!vm_config_id_valid(id))
		return fail(err, len, "%s id=%s: use letters, digits, '_' and '-'", what, id);
	return 0;
}

bool vm_config_tap_name_valid(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > 15 || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (name[i] == '/' || name[i] == ':' || isspace((unsigned char)name[i]) ||
		    !isprint((unsigned char)name[i]))
			return false;
	return true;
}

/* Splits "a,b,c" into at most `max` fields in `buf` (modified in place). */
static int split_fields(char *buf, char **fields, int max)
{
	int n = 0;

	for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		if (n == max)
			return -1;
		fields[n++] = tok;
	}
	return n;
}

static int copy_field(char *dst, size_t size, const char *src)
{
	size_t n = strlen(src);

	if (n >= size)
		return -1;
	memcpy(dst, src, n + 1);
	return 0;
}

int vm_config_add_disk(struct vm_config *cfg, const char *spec, char *err, size_t err_len)
{
	struct disk_config d = {0};
	char buf[4200];
	char *fields[8];
	int n;

	if (cfg->nr_disks == VM_CONFIG_MAX_DISKS)
		return fail(err, err_len, "--disk %s: at most %d disks", spec,
			    VM_CONFIG_MAX_DISKS), -ENOSPC;
	if (copy_field(buf, sizeof(buf), spec) || (n = split_fields(buf, fields, 8)) < 1 ||
	    spec[0] == ',')
		return fail(err, err_len, "--disk %s: expected PATH[,ro][,id=NAME]", spec);
	if (copy_field(d.path, sizeof(d.path), fields[0]))
		return fail(err, err_len, "--disk: the path is too long");
	snprintf(d.id, sizeof(d.id), "disk%d", cfg->nr_disks);
	for (int i = 1; i < n; i++) {
		if (strcmp(fields[i], "ro") == 0)
			d.read_only = true;
		else if (strcmp(fields[i], "rw") == 0)
			d.read_only = false;
		else if (strncmp(fields[i], "id=", 3) == 0 &&
			 copy_field(d.id, sizeof(d.id), fields[i] + 3) == 0)
			;
		else
			return fail(err, err_len, "--disk %s: unknown or too long option '%s' "
				    "(expected ro or id=NAME)", spec, fields[i]);
	}
	cfg->disks[cfg->nr_disks++] = d;
	return 0;
}

int vm_config_parse_mac(const char *s, uint8_t mac[6])
{
	unsigned v[6];
	char tail;

	/* sscanf's %2x would also take " f" or "+f": every digit is checked first. */
	if (strlen(s) != 17)
		return -1;
	for (int i = 0; i < 17; i++)
		if (i % 3 == 2 ? s[i] != ':' : !isxdigit((unsigned char)s[i]))
			return -1;
	if (sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &v[0], &v[1], &v[2], &v[3],
				      &v[4], &v[5], &tail) != 6)
		return -1;
	for (int i = 0; i < 6; i++)
		mac[i] = (uint8_t)v[i];
	return 0;
}

int vm_config_add_net(struct vm_config *cfg, const char *spec, char *err, size_t err_len)
{
	struct net_config nc = {0};
	char buf[256];
	char *fields[8];
	int n;

	if (cfg->nr_nets == VM_CONFIG_MAX_NETS)
		return fail(err, err_len, "--net %s: at most %d interfaces", spec,
			    VM_CONFIG_MAX_NETS), -ENOSPC;
	if (copy_field(buf, sizeof(buf), spec) || (n = split_fields(buf, fields, 8)) < 1)
		return fail(err, err_len, "--net %s: expected tap=NAME[,mac=MAC][,id=NAME]", spec);
	snprintf(nc.id, sizeof(nc.id), "net%d", cfg->nr_nets);
	for (int i = 0; i < n; i++) {
		const char *f = fields[i];

		if (strncmp(f, "tap=", 4) == 0) {
			if (!f[4] || copy_field(nc.tap, sizeof(nc.tap), f + 4) || strchr(f + 4, '/'))
				return fail(err, err_len, "--net %s: a tap name is 1 to 15 characters, "
					    "without '/'", spec);
		} else if (strncmp(f, "mac=", 4) == 0) {
			if (vm_config_parse_mac(f + 4, nc.mac))
				return fail(err, err_len, "--net %s: mac=%s is not a MAC address "
					    "(xx:xx:xx:xx:xx:xx)", spec, f + 4);
			if (nc.mac[0] & 1)
				return fail(err, err_len, "--net %s: mac=%s is a multicast address",
					    spec, f + 4);
			nc.has_mac = true;
		} else if (strncmp(f, "id=", 3) == 0 && copy_field(nc.id, sizeof(nc.id), f + 3) == 0) {
		} else {
			return fail(err, err_len, "--net %s: unknown or too long option '%s' "
				    "(expected tap=, mac= or id=)", spec, f);
		}
	}
	if (!nc.tap[0])
		return fail(err, err_len, "--net %s: tap=NAME is required", spec);
	cfg->nets[cfg->nr_nets++] = nc;
	return 0;
}

static int find_disk(const struct vm_config *cfg, const char *id)
{
	for (int i = 0; i < cfg->nr_disks; i++)
		if (strcmp(cfg->disks[i].id, id) == 0)
			return i;
	return -1;
}

int vm_config_put_disk(struct vm_config *cfg, const struct disk_config *d, char *err,
		       size_t err_len)
{
	int i = find_disk(cfg, d->id);

	if (d->is_root)
		for (int j = 0; j < cfg->nr_disks; j++)
			if (j != i && cfg->disks[j].is_root)
				return fail(err, err_len, "drive %s: drive %s is already the root "
					    "device", d->id, cfg->disks[j].id);
	if (i < 0) {
		if (cfg->nr_disks == VM_CONFIG_MAX_DISKS)
			return fail(err, err_len, "drive %s: at most %d drives", d->id,
				    VM_CONFIG_MAX_DISKS), -ENOSPC;
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

int vm_config_put_net(struct vm_config *cfg, const struct net_config *nc, char *err,
		      size_t err_len)
{
	int i = -1;

	for (int j = 0; j < cfg->nr_nets; j++)
		if (strcmp(cfg->nets[j].id, nc->id) == 0)
			i = j;
	for (int j = 0; j < cfg->nr_nets; j++) {
		if (j == i)
			continue;
		if (strcmp(cfg->nets[j].tap, nc->tap) == 0)
			return fail(err, err_len, "network interface %s: interface %s already uses "
				    "%s", nc->id, cfg->nets[j].id, nc->tap);
		if (nc->has_mac && cfg->nets[j].has_mac &&
		    memcmp(cfg->nets[j].mac, nc->mac, 6) == 0)
			return fail(err, err_len, "network interface %s: interface %s already has "
				    "that guest_mac", nc->id, cfg->nets[j].id);
	}
	if (i < 0) {
		if (cfg->nr_nets == VM_CONFIG_MAX_NETS)
			return fail(err, err_len, "network interface %s: at most %d interfaces",
				    nc->id, VM_CONFIG_MAX_NETS), -ENOSPC;
		i = cfg->nr_nets++;
	}
	cfg->nets[i] = *nc;
	return 0;
}

static int validate_devices(const struct vm_config *cfg, char *err, size_t err_len)
{
	int ret;

	if (!cfg->kernel_path && (cfg->nr_disks || cfg->nr_nets || cfg->rng ||
				  cfg->console == CONSOLE_VIRTIO))
		return fail(err, err_len, "virtio devices (--disk, --net, --rng, --console virtio) "
			    "need --kernel");
	for (int i = 0; i < cfg->nr_disks; i++) {
		const struct disk_config *d = &cfg->disks[i];

		if ((ret = check_id("--disk", d->id, err, err_len)))
			return ret;
		if (access(d->path, d->read_only ? R_OK : R_OK | W_OK) != 0)
			return fail(err, err_len, "disk %s: %s%s", d->path, strerror(errno),
				    d->read_only || errno != EACCES ? "" : " (add ,ro for a read-only disk)");
		for (int j = 0; j < i; j++)
			if (strcmp(cfg->disks[j].id, d->id) == 0)
				return fail(err, err_len, "two disks have id=%s", d->id);
		if (d->is_root && i != 0)
			return fail(err, err_len, "disk %s: the root device must be the first disk",
				    d->id);
	}
	for (int i = 0; i < cfg->nr_nets; i++) {
		const struct net_config *nc = &cfg->nets[i];

		if ((ret = check_id("--net", nc->id, err, err_len)))
			return ret;
		for (int j = 0; j < i; j++) {
			if (strcmp(cfg->nets[j].id, nc->id) == 0)
				return fail(err, err_len, "two interfaces have id=%s", nc->id);
			if (strcmp(cfg->nets[j].tap, nc->tap) == 0)
				return fail(err, err_len, "two interfaces use tap %s", nc->tap);
			if (nc->has_mac && cfg->nets[j].has_mac &&
			    memcmp(cfg->nets[j].mac, nc->mac, 6) == 0)
				return fail(err, err_len, "two interfaces have the same MAC address");
		}
	}
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
	if ((ret = arch_validate_config(cfg, err, err_len)))
		return ret;
	return validate_devices(cfg, err, err_len);
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
	const struct disk_config *root = cfg->nr_disks && cfg->disks[0].is_root ? &cfg->disks[0]
										   : NULL;
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
