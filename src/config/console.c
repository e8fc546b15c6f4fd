/* Where the guest's console is: --console serial|virtio. Firecracker's configuration has no
 * such section, so it is a command-line option only. The serial console is a platform device
 * (the arch builds it); the virtio console is the device kind counted here. */
#include "config/resource.h"
#include "base/log.h"

#include <errno.h>
#include <string.h>

static int parse_option(struct vm_config *cfg, const char *arg)
{
	if (strcmp(arg, "serial") == 0)
		cfg->console = CONSOLE_SERIAL;
	else if (strcmp(arg, "virtio") == 0)
		cfg->console = CONSOLE_VIRTIO;
	else
		return log_set_error(-EINVAL, "--console is serial or virtio, not '%s'", arg);
	return 0;
}

static int count(const struct vm_config *cfg)
{
	return cfg->console == CONSOLE_VIRTIO ? 1 : 0;
}

const struct config_resource console_resource = {
    .option = "console",
    .option_arg = true,
    .option_help = "  --console serial|virtio\n"
		   "                         the guest console: ttyS0 (default) or hvc0 (virtio)\n",
    .option_label = "--console virtio",
    .parse_option = parse_option,
    .count = count,
};
