/* --debug-exit: the x86 test device at port 0xf4 (devices/debug_exit.h), through which a test
 * kernel ends skiff with a status of its choosing. Firecracker has no such thing, so it is a
 * command-line option only; a platform device, not a virtio one, so it counts no device here.
 * arm64 refuses it (arch_validate_config): test images there end through PSCI. */
#include "config/resource.h"

static int parse_option(struct vm_config *cfg, const char *arg)
{
	cfg->debug_exit = true;
	return 0;
}

const struct config_resource debug_exit_resource = {
    .option = "debug-exit",
    .option_help =
	"  --debug-exit           x86_64: a guest write of V to port 0xf4 ends skiff with\n"
	"                         exit status (V << 1) | 1 (QEMU's isa-debug-exit)\n",
    .parse_option = parse_option,
};
