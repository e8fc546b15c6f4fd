/* skiff's command line: parse, validate, build the VM, run it, and turn how it ended into the
 * exit status. */
#include "api/routes.h"
#include "api/server.h"
#include "arch/arch.h"
#include "base/crash.h"
#include "config/config_json.h"
#include "config/resource.h"
#include "config/vm_config.h"
#include "version.h"
#include "vmm/instance.h"
#include "vmm/snapshot.h"
#include "base/log.h"
#include "base/seccomp.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_CONFIG_FILE (1 << 20)
#define EXIT_USAGE    2

/* skiff --help: usage_head, the device options (each device kind's line, from its config
 * resource), usage_tail. One line per option: the manual page, skiff(1), has the rest. */
static const char usage_head[] =
	"usage: skiff [--log-level LEVEL] [COMMAND] [OPTIONS]\n"
	"\n"
	"skiff is a small virtual machine monitor on Linux KVM. The whole manual: man skiff\n"
	"\n"
	"Commands:\n"
	"  run                    boot a VM (the default; without options: the demo guest)\n"
	"  version                print skiff's version\n"
	"  snapshot-merge BASE DIFF  apply a Diff snapshot's memory file onto its base's\n"
	"  help                   this text\n"
	"\n"
	"skiff run [OPTIONS]\n"
	"  --kernel PATH          Linux kernel: bzImage or ELF vmlinux (x86_64), Image (arm64)\n"
	"  --initrd PATH          initial ramdisk\n"
	"  --cmdline STR          kernel command line (default console=ttyS0)\n"
	"  --boot-protocol P      x86_64 ELF kernels: auto (default), linux64 or pvh\n"
	"  --raw PATH             a flat binary instead of a kernel\n"
	"  --firmware PATH        x86_64: a BIOS image (SeaBIOS's bios.bin) started at the reset\n"
	"                         vector; boots the disks itself (implies --enable-pci)\n"
	"  --cpus N               vCPUs (default 1)\n"
	"  --memory MIB           guest memory in MiB, or 512M, 2G (default 256)\n"
	"  --irqchip KIND         arm64: auto (default), gicv3 or gicv2\n"
	"  --enable-pci           virtio devices on PCI (virtio-pci, MSI-X) instead of MMIO\n"
	"  --mem-mergeable        offer guest memory to KSM (same-page merging)\n";

static const char usage_tail[] =
	"  --api-sock PATH        serve Firecracker's HTTP API on this UNIX socket\n"
	"  --config-file FILE     boot the VM a JSON document describes\n"
	"  --no-api               with --config-file: no API socket (the default)\n"
	"  --id ID                the instance's id (default anonymous-instance)\n"
	"  --log-path PATH        log to this file instead of stderr\n"
	"  --metrics-path PATH    append metrics to this file as JSON lines\n"
	"  --restore STATE        restore a snapshot (with --mem-file) instead of booting\n"
	"  --mem-file PATH        the snapshot's guest memory file\n"
	"  --resume               run the restored VM at once (else paused, for the API)\n"
	"  --clock-realtime       the restored guest's clock catches up with the real time\n"
	"  --migrate-from URL     receive a live-migrated VM (unix:PATH or tcp:HOST:PORT)\n"
	"                         instead of booting; it runs once the source hands it over\n"
	"  --net-override ID=TAP  with --restore or --migrate-from: interface ID uses tap TAP\n"
	"                         here (Firecracker's network_overrides; repeatable)\n"
	"  --seccomp-level N      seccomp filters per thread: 0 off, 1 calls, 2 calls and\n"
	"                         arguments (the default)\n"
	"\n"
	"Global options:\n"
	"  --log-level LEVEL      error, warning (default), info or debug\n"
	"  --version              print skiff's version\n"
	"  -h, --help             this text\n"
	"\n"
	"Ctrl-A x quits. Exit status: 0 guest powered off or reset, 1 failure, 2 bad arguments,\n"
	"128+N signal N.\n"
	"\n"
	"Examples:\n"
	"  skiff\n"
	"  skiff run --kernel vmlinuz --initrd initrd.img --disk rootfs.ext4 --net tap=tap0\n"
	"  skiff --api-sock /tmp/skiff.sock\n";

static void print_usage(void)
{
	fputs(usage_head, stdout);
	for (const struct config_resource *const *r = config_resources; *r; r++)
		if ((*r)->option)
			fputs((*r)->option_help, stdout);
	fputs(usage_tail, stdout);
}

static int usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "skiff: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, " (see skiff --help)\n");
	return EXIT_USAGE;
}

static int parse_int(const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

/* MiB, with an optional M/MiB/G/GiB suffix. */
static int parse_memory(const char *s, uint64_t *mib)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || s[0] == '-')
		return -EINVAL;
	if (strcmp(end, "G") == 0 || strcmp(end, "GiB") == 0 || strcmp(end, "g") == 0) {
		if (v > (1ULL << 40))
			return -EINVAL;
		v <<= 10;
	} else if (*end && strcmp(end, "M") != 0 && strcmp(end, "MiB") != 0 &&
		   strcmp(end, "m") != 0) {
		return -EINVAL;
	}
	*mib = v;
	return 0;
}

enum {
	OPT_KERNEL = 256,
	OPT_INITRD,
	OPT_CMDLINE,
	OPT_RAW,
	OPT_FIRMWARE,
	OPT_CPUS,
	OPT_MEMORY,
	OPT_BOOT_PROTOCOL,
	OPT_IRQCHIP,
	OPT_LOG_LEVEL,
	OPT_ENABLE_PCI,
	OPT_MEM_MERGEABLE,
	OPT_API_SOCK,
	OPT_CONFIG_FILE,
	OPT_NO_API,
	OPT_ID,
	OPT_LOG_PATH,
	OPT_METRICS_PATH,
	OPT_SECCOMP_LEVEL,
	OPT_RESTORE,
	OPT_MIGRATE_FROM,
	OPT_MEM_FILE,
	OPT_RESUME,
	OPT_CLOCK_REALTIME,
	OPT_NET_OVERRIDE,
	OPT_DEVICE, /* OPT_DEVICE + i: the option of config_resources[i] */
};

/* The options that are not part of the VM's description. */
struct run_options {
	const char *api_sock;
	const char *config_file;
	bool no_api;
	const char *id;
	const char *log_path;
	const char *metrics_path;
	int seccomp_level;
	const char *restore; /* --restore STATE, with --mem-file and --resume */
	const char *migrate_from; /* --migrate-from URL */
	const char *mem_file;
	bool resume;
	bool clock_realtime;
	/* --net-override ID=TAP, for --restore or --migrate-from */
	int nr_overrides;
	struct snapshot_net_override overrides[VM_CONFIG_MAX_NETS];
};

/* The options of `run` that are not a device kind's (those come from config/resource.h). */
static const struct option run_options[] = {
	{ "kernel", required_argument, NULL, OPT_KERNEL },
	{ "initrd", required_argument, NULL, OPT_INITRD },
	{ "cmdline", required_argument, NULL, OPT_CMDLINE },
	{ "raw", required_argument, NULL, OPT_RAW },
	{ "firmware", required_argument, NULL, OPT_FIRMWARE },
	{ "cpus", required_argument, NULL, OPT_CPUS },
	{ "memory", required_argument, NULL, OPT_MEMORY },
	{ "boot-protocol", required_argument, NULL, OPT_BOOT_PROTOCOL },
	{ "irqchip", required_argument, NULL, OPT_IRQCHIP },
	{ "log-level", required_argument, NULL, OPT_LOG_LEVEL },
	{ "enable-pci", no_argument, NULL, OPT_ENABLE_PCI },
	{ "mem-mergeable", no_argument, NULL, OPT_MEM_MERGEABLE },
	{ "api-sock", required_argument, NULL, OPT_API_SOCK },
	{ "config-file", required_argument, NULL, OPT_CONFIG_FILE },
	{ "no-api", no_argument, NULL, OPT_NO_API },
	{ "id", required_argument, NULL, OPT_ID },
	{ "log-path", required_argument, NULL, OPT_LOG_PATH },
	{ "metrics-path", required_argument, NULL, OPT_METRICS_PATH },
	{ "seccomp-level", required_argument, NULL, OPT_SECCOMP_LEVEL },
	{ "restore", required_argument, NULL, OPT_RESTORE },
	{ "migrate-from", required_argument, NULL, OPT_MIGRATE_FROM },
	{ "mem-file", required_argument, NULL, OPT_MEM_FILE },
	{ "resume", no_argument, NULL, OPT_RESUME },
	{ "clock-realtime", no_argument, NULL, OPT_CLOCK_REALTIME },
	{ "net-override", required_argument, NULL, OPT_NET_OVERRIDE },
	{ "help", no_argument, NULL, 'h' },
};

#define MAX_OPTIONS 64

/* run_options and every device kind's option, NULL-terminated, in `out`. */
static void all_run_options(struct option out[MAX_OPTIONS])
{
	size_t n = 0;

	for (size_t i = 0; i < sizeof(run_options) / sizeof(run_options[0]); i++)
		out[n++] = run_options[i];
	for (int i = 0; config_resources[i] && n < MAX_OPTIONS - 1; i++) {
		const struct config_resource *r = config_resources[i];

		if (r->option)
			out[n++] = (struct option){ r->option,
						    r->option_arg	   ? required_argument
						    : r->option_arg_optional ? optional_argument
									     : no_argument,
						    NULL, OPT_DEVICE + i };
	}
	out[n] = (struct option){ NULL, 0, NULL, 0 };
}

static int parse_run_options(int argc, char **argv, struct vm_config *cfg,
			     struct run_options *ro)
{
	struct option options[MAX_OPTIONS];
	enum log_level level;
	long n;
	int opt;

	all_run_options(options);
	optind = 1;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "+:h", options, NULL)) != -1) {
		if (opt >= OPT_DEVICE) {
			if (config_resources[opt - OPT_DEVICE]->parse_option(cfg, optarg))
				return usage_error("%s", log_last_error());
			continue;
		}
		switch (opt) {
		case OPT_KERNEL:
			cfg->kernel_path = optarg;
			break;
		case OPT_INITRD:
			cfg->initrd_path = optarg;
			break;
		case OPT_CMDLINE:
			cfg->cmdline = optarg;
			break;
		case OPT_RAW:
			cfg->raw_path = optarg;
			break;
		case OPT_FIRMWARE:
			/* SeaBIOS finds disks on PCI only (virtio-blk-pci). */
			cfg->firmware_path = optarg;
			cfg->enable_pci = true;
			cfg->origin[VM_SETTING_PCI] = VM_ORIGIN_CLI;
			break;
		case OPT_CPUS:
			if (parse_int(optarg, 1, 4096, &n))
				return usage_error("--cpus wants a number of vCPUs, not '%s'",
						   optarg);
			cfg->nr_cpus = (int)n;
			cfg->origin[VM_SETTING_CPUS] = VM_ORIGIN_CLI;
			break;
		case OPT_MEMORY:
			if (parse_memory(optarg, &cfg->memory_mib))
				return usage_error("--memory wants MiB (e.g. 512 or 2G), not '%s'",
						   optarg);
			cfg->origin[VM_SETTING_MEMORY] = VM_ORIGIN_CLI;
			break;
		case OPT_BOOT_PROTOCOL:
			if (strcmp(optarg, "auto") == 0)
				cfg->boot_protocol = BOOT_PROTOCOL_AUTO;
			else if (strcmp(optarg, "linux64") == 0)
				cfg->boot_protocol = BOOT_PROTOCOL_LINUX64;
			else if (strcmp(optarg, "pvh") == 0)
				cfg->boot_protocol = BOOT_PROTOCOL_PVH;
			else
				return usage_error("--boot-protocol is auto, linux64 or pvh, not '%s'",
						   optarg);
			break;
		case OPT_IRQCHIP:
			if (strcmp(optarg, "auto") == 0)
				cfg->irqchip = IRQCHIP_AUTO;
			else if (strcmp(optarg, "gicv3") == 0)
				cfg->irqchip = IRQCHIP_GICV3;
			else if (strcmp(optarg, "gicv2") == 0)
				cfg->irqchip = IRQCHIP_GICV2;
			else
				return usage_error("--irqchip is auto, gicv3 or gicv2, not '%s'",
						   optarg);
			break;
		case OPT_LOG_LEVEL:
			if (log_parse_level(optarg, &level))
				return usage_error("--log-level is error, warning, info or debug, "
						   "not '%s'",
						   optarg);
			log_set_level(level);
			break;
		case OPT_ENABLE_PCI:
			cfg->enable_pci = true;
			cfg->origin[VM_SETTING_PCI] = VM_ORIGIN_CLI;
			break;
		case OPT_MEM_MERGEABLE:
			cfg->mem_mergeable = true;
			break;
		case OPT_API_SOCK:
			if (!optarg[0])
				return usage_error("%s", "--api-sock wants a socket path; an empty one "
						   "would be an abstract socket any local user "
						   "could drive");
			ro->api_sock = optarg;
			break;
		case OPT_CONFIG_FILE:
			ro->config_file = optarg;
			break;
		case OPT_NO_API:
			ro->no_api = true;
			break;
		case OPT_ID:
			ro->id = optarg;
			break;
		case OPT_LOG_PATH:
			ro->log_path = optarg;
			break;
		case OPT_METRICS_PATH:
			ro->metrics_path = optarg;
			break;
		case OPT_SECCOMP_LEVEL:
			if (parse_int(optarg, 0, 2, &n))
				return usage_error("--seccomp-level is 0 (no filters), 1 (system "
						   "calls) or 2 (calls and arguments), not '%s'",
						   optarg);
			ro->seccomp_level = (int)n;
			break;
		case OPT_RESTORE:
			ro->restore = optarg;
			break;
		case OPT_MIGRATE_FROM:
			ro->migrate_from = optarg;
			break;
		case OPT_MEM_FILE:
			ro->mem_file = optarg;
			break;
		case OPT_RESUME:
			ro->resume = true;
			break;
		case OPT_CLOCK_REALTIME:
			ro->clock_realtime = true;
			break;
		case OPT_NET_OVERRIDE:
			if (config_parse_net_override(optarg, ro->overrides, &ro->nr_overrides))
				return usage_error("%s", log_last_error());
			break;
		case 'h':
			print_usage();
			exit(0);
		case ':':
			return usage_error("%s needs a value", argv[optind - 1]);
		default:
			return usage_error("unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return usage_error("unexpected argument '%s'", argv[optind]);
	return 0;
}

/* Firecracker's rule for instance ids: 1 to 64 of [A-Za-z0-9-]. */
static bool valid_id(const char *id)
{
	size_t n = strlen(id);

	if (n == 0 || n > 64)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!(id[i] == '-' || (id[i] >= '0' && id[i] <= '9') ||
		      (id[i] >= 'a' && id[i] <= 'z') || (id[i] >= 'A' && id[i] <= 'Z')))
			return false;
	return true;
}

/* The whole --config-file document, bounded; NULL (after a message) when unreadable. */
static char *read_config_file(const char *path, size_t *len)
{
	/* Non-blocking, so that a FIFO fails below instead of hanging in open(). */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	char *buf = NULL;
	size_t got = 0;
	struct stat st;
	ssize_t n;

	if (fd < 0 || fstat(fd, &st) < 0) {
		fprintf(stderr, "skiff: --config-file %s: %s\n", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	if (!S_ISREG(st.st_mode)) {
		fprintf(stderr, "skiff: --config-file %s: not a regular file\n", path);
		close(fd);
		return NULL;
	}
	buf = malloc(MAX_CONFIG_FILE + 1);
	while (buf && (n = read(fd, buf + got, MAX_CONFIG_FILE + 1 - got)) > 0)
		got += (size_t)n;
	if (buf && n < 0) {
		fprintf(stderr, "skiff: --config-file %s: %s\n", path, strerror(errno));
		free(buf);
		buf = NULL;
	} else if (buf && got > MAX_CONFIG_FILE) {
		fprintf(stderr, "skiff: --config-file %s: larger than %d bytes\n", path,
			MAX_CONFIG_FILE);
		free(buf);
		buf = NULL;
	}
	close(fd);
	*len = got;
	return buf;
}

/* --restore: the snapshot describes the VM, so nothing else may; it is loaded when the instance
 * runs (instance_run), where a failure is said as the VM's build failures are. */
static int prepare_restore(struct instance *in, const struct run_options *ro)
{
	static struct snapshot_load_request req;
	struct vm_config fresh;

	vm_config_init_defaults(&fresh);
	if (ro->config_file || memcmp(&fresh, &in->cfg, sizeof(fresh)) != 0)
		return usage_error("%s", "--restore: the snapshot describes the VM; it does not go "
					 "with options that describe one (--kernel, --cpus, "
					 "--disk, --config-file, ...)");
	if (!ro->mem_file)
		return usage_error("%s", "--restore needs --mem-file, the snapshot's memory file");
	if (!ro->resume && !ro->api_sock)
		return usage_error("%s", "--restore without --resume leaves the VM paused: give "
					 "--api-sock to resume it (PATCH /vm), or --resume");
	if (snprintf(req.snapshot_path, sizeof(req.snapshot_path), "%s", ro->restore) >=
		    (int)sizeof(req.snapshot_path) ||
	    snprintf(req.mem_path, sizeof(req.mem_path), "%s", ro->mem_file) >=
		    (int)sizeof(req.mem_path))
		return usage_error("%s", "--restore or --mem-file: the path is too long");
	req.resume = ro->resume;
	req.clock_realtime = ro->clock_realtime;
	req.nr_overrides = ro->nr_overrides;
	memcpy(req.overrides, ro->overrides, sizeof(req.overrides));
	in->restore = &req;
	return 0;
}

/* --migrate-from: the source describes the VM, so nothing else may; it is received when the
 * instance runs (instance_run). */
static int prepare_migrate_from(struct instance *in, const struct run_options *ro)
{
	struct vm_config fresh;

	vm_config_init_defaults(&fresh);
	if (ro->config_file || ro->restore || memcmp(&fresh, &in->cfg, sizeof(fresh)) != 0)
		return usage_error("%s", "--migrate-from: the source describes the VM; it does not "
					 "go with options that describe one (--kernel, --cpus, "
					 "--disk, --config-file, --restore, ...)");
	in->migrate_from = ro->migrate_from;
	in->migrate_overrides = ro->overrides;
	in->nr_migrate_overrides = ro->nr_overrides;
	return 0;
}

/* Everything that describes the VM and where its logs and metrics go, before it runs. Returns
 * 0 or an exit status. */
static int prepare_instance(struct instance *in, const struct run_options *ro)
{
	struct vm_config *cfg = &in->cfg;
	struct logger_config lc = { 0 };
	struct metrics_config mc = { 0 };

	if (ro->id && !valid_id(ro->id))
		return usage_error("--id is 1 to 64 letters, digits or '-', not '%s'", ro->id);
	if (ro->id)
		snprintf(in->id, sizeof(in->id), "%s", ro->id);
	if (ro->no_api && ro->api_sock)
		return usage_error("%s", "--no-api and --api-sock contradict each other");
	if (ro->no_api && !ro->config_file)
		return usage_error("%s", "--no-api needs --config-file to describe the VM");
	if ((ro->mem_file || ro->resume || ro->clock_realtime) && !ro->restore)
		return usage_error("%s", "--mem-file, --resume and --clock-realtime go with --restore");
	if (ro->restore && ro->migrate_from)
		return usage_error("%s", "--restore and --migrate-from contradict each other");
	if (ro->nr_overrides && !ro->restore && !ro->migrate_from)
		return usage_error("%s", "--net-override goes with --restore or --migrate-from");
	if (ro->restore && ro->config_file)
		return usage_error("%s", "--restore: the snapshot describes the VM; it does not go "
					 "with --config-file");
	if (ro->config_file) {
		size_t len;
		char *doc;
		int ret;

		if (cfg->kernel_path || cfg->initrd_path || cfg->cmdline || cfg->raw_path)
			return usage_error("%s", "--config-file describes the boot source: it does "
						 "not go with --kernel, --initrd, --cmdline or --raw");
		doc = read_config_file(ro->config_file, &len);
		if (!doc)
			return EXIT_USAGE;
		ret = config_json_document(cfg, &lc, &mc, doc, len);
		free(doc);
		if (ret) {
			fprintf(stderr, "skiff: --config-file %s: %s\n", ro->config_file,
				log_last_error());
			return EXIT_USAGE;
		}
	}
	if (ro->log_path) {
		/* Without a logger section, --log-path keeps stderr's line format. */
		if (!lc.log_path[0] && !lc.has_level)
			lc.show_level = true;
		snprintf(lc.log_path, sizeof(lc.log_path), "%s", ro->log_path);
	}
	if (lc.log_path[0] || lc.has_level) {
		if (!lc.has_level) {
			lc.has_level = true;
			lc.level = (int)log_get_level();
		}
		if (instance_set_logger(in, &lc)) {
			fprintf(stderr, "skiff: %s\n", log_last_error());
			return EXIT_USAGE;
		}
	}
	if (ro->metrics_path)
		snprintf(mc.metrics_path, sizeof(mc.metrics_path), "%s", ro->metrics_path);
	if (mc.metrics_path[0] && instance_set_metrics(in, mc.metrics_path)) {
		fprintf(stderr, "skiff: %s\n", log_last_error());
		return EXIT_USAGE;
	}
	if (ro->restore)
		return prepare_restore(in, ro);
	if (ro->migrate_from)
		return prepare_migrate_from(in, ro);
	/* Without an API nothing else will describe the VM: check it now, as a usage error. */
	if (!ro->api_sock || ro->config_file) {
		if (!cfg->kernel_path && !cfg->raw_path && !cfg->firmware_path)
			arch_demo_guest(&cfg->raw_image, &cfg->raw_size);
		if (vm_check_config(cfg, 0, host_memory_mib())) {
			fprintf(stderr, "skiff: %s\n", log_last_error());
			return EXIT_USAGE;
		}
	}
	return 0;
}

static void stop_api(void *ctx)
{
	struct api_server **api = ctx;

	if (*api)
		api_server_stop(*api); /* removes the socket file */
	*api = NULL;
}

/* The API serves the instance: started once the termination signals are blocked (so its thread
 * inherits the mask), stopped as soon as the VM has ended, before the VM is torn down. */
static int run_instance(struct instance *in, const struct run_options *ro)
{
	struct api_server *api = NULL;
	const struct instance_hooks hooks = { .vm_ended = stop_api, .ctx = &api };
	int status;

	if (instance_block_signals(in))
		return 1;
	if (ro->api_sock && api_server_start(&api, ro->api_sock, api_handle_request, in)) {
		return 1; /* instance_destroy() restores the signal mask */
	}
	status = instance_run(in, !ro->api_sock || ro->config_file || ro->restore ||
					  ro->migrate_from,
			      &hooks);
	stop_api(&api);
	return status;
}

static int cmd_run(int argc, char **argv)
{
	struct run_options ro = { .seccomp_level = SECCOMP_LEVEL_DEFAULT };
	struct instance in;
	int ret;

	if (instance_init(&in, NULL))
		return 1;
	ret = parse_run_options(argc, argv, &in.cfg, &ro);
	if (!ret) {
		seccomp_configure(ro.seccomp_level);
		/* jansson seeds its hash tables from /dev/urandom on first use, which may be on
		 * a thread whose filter has no open() (the main thread's last metrics line). */
		json_object_seed(0);
	}
	if (!ret)
		ret = prepare_instance(&in, &ro);
	if (!ret)
		ret = run_instance(&in, &ro);
	instance_destroy(&in);
	return ret;
}

/* skiff snapshot-merge BASE_MEM DIFF_MEM: a Diff snapshot's memory onto its base's. */
static int cmd_snapshot_merge(int argc, char **argv)
{
	if (argc == 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
		printf("usage: skiff snapshot-merge BASE_MEM DIFF_MEM\n"
		       "Copies the pages a Diff snapshot's memory file holds onto the memory file\n"
		       "of the snapshot before it, in place (man skiff: SNAPSHOT OPTIONS).\n");
		return 0;
	}
	if (argc != 3)
		return usage_error("%s", "snapshot-merge wants two files: BASE_MEM DIFF_MEM");
	if (snapshot_merge_memory(argv[1], argv[2])) {
		fprintf(stderr, "skiff: %s\n", log_last_error());
		return 1;
	}
	return 0;
}

/* Descriptors a careless or hostile parent left open (a socket, a file it writes) would stay in
 * skiff for the whole life of a VM, where a guest escape could use them: close every one above
 * stderr before skiff opens anything (what skiff opens itself is O_CLOEXEC). */
static void close_inherited_fds(void)
{
	DIR *d;
	struct dirent *e;

	if (close_range(3, ~0U, 0) == 0)
		return;
	/* Kernels before 5.9 have no close_range(): close what /proc lists. */
	d = opendir("/proc/self/fd");
	if (!d)
		return;
	while ((e = readdir(d))) {
		int fd = atoi(e->d_name);

		if (fd > 2 && fd != dirfd(d))
			close(fd);
	}
	closedir(d);
}

int main(int argc, char **argv)
{
	int first = 1;
	enum log_level level;

	close_inherited_fds();
	crash_report_init();
	/* A closed stdout must make the console's writes fail, not kill skiff. */
	signal(SIGPIPE, SIG_IGN);

	/* Global options before the command. */
	while (first < argc && argv[first][0] == '-') {
		if (strcmp(argv[first], "-h") == 0 || strcmp(argv[first], "--help") == 0) {
			print_usage();
			return 0;
		}
		if (strcmp(argv[first], "--version") == 0) {
			printf("skiff %s\n", SKIFF_VERSION);
			return 0;
		}
		if (strcmp(argv[first], "--log-level") == 0 && first + 1 < argc) {
			if (log_parse_level(argv[first + 1], &level))
				return usage_error("--log-level is error, warning, info or debug, not "
						   "'%s'",
						   argv[first + 1]);
			log_set_level(level);
			first += 2;
			continue;
		}
		/* Options of `run` given without the command: `skiff --kernel ...`. */
		return cmd_run(argc - first + 1, argv + first - 1);
	}
	if (first == argc)
		return cmd_run(1, argv + first - 1);
	if (strcmp(argv[first], "run") == 0)
		return cmd_run(argc - first, argv + first);
	if (strcmp(argv[first], "version") == 0) {
		printf("skiff %s\n", SKIFF_VERSION);
		return 0;
	}
	if (strcmp(argv[first], "snapshot-merge") == 0)
		return cmd_snapshot_merge(argc - first, argv + first);
	if (strcmp(argv[first], "help") == 0) {
		print_usage();
		return 0;
	}
	return usage_error("unknown command '%s'", argv[first]);
}
