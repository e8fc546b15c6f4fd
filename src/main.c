/* skiff's command line: parse, validate, build the VM, run it, and turn how it ended into the
 * exit status. */
#include "arch/arch.h"
#include "config/vm_config.h"
#include "vmm/kvm.h"
#include "vmm/log.h"
#include "vmm/vm.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SKIFF_VERSION "0.1.0"
#define EXIT_USAGE    2

static const char usage_text[] =
	"usage: skiff [--log-level LEVEL] COMMAND [OPTIONS]\n"
	"\n"
	"skiff is a small virtual machine monitor on Linux KVM.\n"
	"\n"
	"Commands:\n"
	"  run        boot a VM (with no options: the built-in demo guest)\n"
	"  version    print skiff's version\n"
	"  help       this text\n"
	"Without a command, skiff runs the built-in demo guest.\n"
	"\n"
	"skiff run [OPTIONS]\n"
	"  --kernel PATH          Linux kernel: x86_64 bzImage or ELF vmlinux (PVH when it has the\n"
	"                         note); arm64 Image, plain or gzip-compressed\n"
	"  --initrd PATH          initial ramdisk\n"
	"  --cmdline STR          kernel command line (console=ttyS0 is added when it has no\n"
	"                         console=)\n"
	"  --boot-protocol P      for x86_64 ELF kernels: auto (default), linux64 or pvh\n"
	"  --raw PATH             a flat binary: x86_64 loads it at 0x1000 and starts it in 16-bit\n"
	"                         real mode (its final hlt ends the VM); arm64 at the start of RAM\n"
	"                         (0x80000000) at EL1 (PSCI SYSTEM_OFF ends the VM)\n"
	"  --irqchip KIND         arm64 interrupt controller: auto (default: GICv3, else GICv2),\n"
	"                         gicv3 or gicv2; x86_64 takes only auto\n"
	"  --cpus N               vCPUs (default 1)\n"
	"  --memory MIB           guest memory in MiB, or with a suffix: 512M, 2G (default 256)\n"
	"  --disk PATH[,ro][,id=NAME]\n"
	"                         a raw disk image as virtio-blk (/dev/vda, vdb, ... in order);\n"
	"                         ro: read-only; id: the serial the guest sees (default diskN).\n"
	"                         Repeatable, up to 8\n"
	"  --net tap=NAME[,mac=MAC][,id=NAME]\n"
	"                         virtio-net on a tap interface (created if skiff may; else\n"
	"                         create it first: ip tuntap add NAME mode tap user $USER).\n"
	"                         Repeatable, up to 4\n"
	"  --console serial|virtio\n"
	"                         the guest console: the UART (ttyS0, default) or virtio-console\n"
	"                         (hvc0)\n"
	"  --rng                  virtio-rng: the guest's /dev/hwrng, from the host's getrandom()\n"
	"\n"
	"Global options:\n"
	"  --log-level LEVEL      error, warning (default), info or debug\n"
	"  -h, --help             this text\n"
	"\n"
	"The guest's serial console is on stdin/stdout; on a terminal, Ctrl-A x quits.\n"
	"Exit status: 0 when the guest powers off, resets or halts for good; 1 when it fails\n"
	"(triple fault, KVM error); 2 for bad arguments; 128+N when stopped by signal N.\n"
	"\n"
	"Examples:\n"
	"  skiff\n"
	"  skiff run --kernel /boot/vmlinuz --initrd initrd.img --cmdline 'panic=-1' --cpus 2\n"
	"  skiff run --kernel bzImage --disk rootfs.ext4 --cmdline 'root=/dev/vda rw' \\\n"
	"            --net tap=tap0 --rng\n";

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
	OPT_CPUS,
	OPT_MEMORY,
	OPT_BOOT_PROTOCOL,
	OPT_IRQCHIP,
	OPT_LOG_LEVEL,
	OPT_DISK,
	OPT_NET,
	OPT_CONSOLE,
	OPT_RNG,
};

static const struct option run_options[] = {
	{ "kernel", required_argument, NULL, OPT_KERNEL },
	{ "initrd", required_argument, NULL, OPT_INITRD },
	{ "cmdline", required_argument, NULL, OPT_CMDLINE },
	{ "raw", required_argument, NULL, OPT_RAW },
	{ "cpus", required_argument, NULL, OPT_CPUS },
	{ "memory", required_argument, NULL, OPT_MEMORY },
	{ "boot-protocol", required_argument, NULL, OPT_BOOT_PROTOCOL },
	{ "irqchip", required_argument, NULL, OPT_IRQCHIP },
	{ "log-level", required_argument, NULL, OPT_LOG_LEVEL },
	{ "disk", required_argument, NULL, OPT_DISK },
	{ "net", required_argument, NULL, OPT_NET },
	{ "console", required_argument, NULL, OPT_CONSOLE },
	{ "rng", no_argument, NULL, OPT_RNG },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

static int parse_run_options(int argc, char **argv, struct vm_config *cfg)
{
	enum log_level level;
	char err[512];
	long n;
	int opt;

	optind = 1;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "+h", run_options, NULL)) != -1) {
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
		case OPT_CPUS:
			if (parse_int(optarg, 1, 4096, &n))
				return usage_error("--cpus wants a number of vCPUs, not '%s'",
						   optarg);
			cfg->nr_cpus = (int)n;
			break;
		case OPT_MEMORY:
			if (parse_memory(optarg, &cfg->memory_mib))
				return usage_error("--memory wants MiB (e.g. 512 or 2G), not '%s'",
						   optarg);
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
		case OPT_DISK:
			if (vm_config_add_disk(cfg, optarg, err, sizeof(err)))
				return usage_error("%s", err);
			break;
		case OPT_NET:
			if (vm_config_add_net(cfg, optarg, err, sizeof(err)))
				return usage_error("%s", err);
			break;
		case OPT_CONSOLE:
			if (strcmp(optarg, "serial") == 0)
				cfg->console = CONSOLE_SERIAL;
			else if (strcmp(optarg, "virtio") == 0)
				cfg->console = CONSOLE_VIRTIO;
			else
				return usage_error("--console is serial or virtio, not '%s'", optarg);
			break;
		case OPT_RNG:
			cfg->rng = true;
			break;
		case 'h':
			fputs(usage_text, stdout);
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

static void warn_if_software_kvm(const struct vm_config *cfg)
{
	char module[32];

	if (!cfg->kernel_path || !kvm_host_is_software(module, sizeof(module)))
		return;
	log_warn("this host has no hardware virtualization (no vmx/svm in /proc/cpuinfo%s%s): "
		 "KVM emulates guest kernel code instruction by instruction, so the guest will run "
		 "thousands of times slower than native and may take minutes to boot",
		 module[0] ? "; KVM module " : "", module);
}

static int cmd_run(int argc, char **argv)
{
	struct vm_config cfg;
	struct vm vm;
	char err[256];
	int ret;

	vm_config_init_defaults(&cfg);
	ret = parse_run_options(argc, argv, &cfg);
	if (ret)
		return ret;
	if (!cfg.kernel_path && !cfg.raw_path)
		arch_demo_guest(&cfg.raw_image, &cfg.raw_size);
	if (vm_config_validate(&cfg, 0, host_memory_mib(), err, sizeof(err))) {
		fprintf(stderr, "skiff: %s\n", err);
		return EXIT_USAGE;
	}
	warn_if_software_kvm(&cfg);
	if (vm_create(&vm, &cfg))
		return 1;
	ret = vm_run(&vm);
	vm_destroy(&vm);
	return ret;
}

int main(int argc, char **argv)
{
	int first = 1;
	enum log_level level;

	/* A closed stdout must make the console's writes fail, not kill skiff. */
	signal(SIGPIPE, SIG_IGN);

	/* Global options before the command. */
	while (first < argc && argv[first][0] == '-') {
		if (strcmp(argv[first], "-h") == 0 || strcmp(argv[first], "--help") == 0) {
			fputs(usage_text, stdout);
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
	if (strcmp(argv[first], "help") == 0) {
		fputs(usage_text, stdout);
		return 0;
	}
	return usage_error("unknown command '%s'", argv[first]);
}
