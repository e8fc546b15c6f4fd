/* --gdb tcp:HOST:PORT | unix:PATH: the GDB stub (vmm/gdb_stub.h) listens there and the guest
 * waits for the debugger before its first instruction. A command-line option only: Firecracker's
 * configuration has no such section. HOST is numeric (IPv4, or IPv6 in brackets), "localhost"
 * or empty (both 127.0.0.1): skiff resolves no names. */
#include "config/resource.h"
#include "base/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int parse_tcp(struct gdb_config *g, const char *arg, const char *spec)
{
	const char *colon = strrchr(spec, ':');
	char host[sizeof(g->host)], *end;
	struct in6_addr a6;
	struct in_addr a4;
	size_t n;
	long port;

	if (!colon)
		return log_set_error(-EINVAL, "--gdb %s: tcp:HOST:PORT needs a port", arg);
	n = (size_t)(colon - spec);
	if (n >= 2 && spec[0] == '[' && spec[n - 1] == ']') {
		spec++;
		n -= 2;
	}
	if (n >= sizeof(host))
		return log_set_error(-EINVAL, "--gdb %s: the host is too long", arg);
	memcpy(host, spec, n);
	host[n] = '\0';
	if (n == 0 || strcmp(host, "localhost") == 0)
		strcpy(host, "127.0.0.1");
	if (inet_pton(AF_INET, host, &a4) != 1 && inet_pton(AF_INET6, host, &a6) != 1)
		return log_set_error(-EINVAL,
				     "--gdb %s: the host must be a numeric address (127.0.0.1, "
				     "[::1]) or localhost",
				     arg);
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (!colon[1] || *end || errno || port < 1 || port > 65535)
		return log_set_error(-EINVAL, "--gdb %s: the port must be 1-65535", arg);
	strcpy(g->host, host);
	g->port = (uint16_t)port;
	return 0;
}

static int parse_option(struct vm_config *cfg, const char *arg)
{
	struct gdb_config g = { .enabled = true };
	int err;

	if (strncmp(arg, "tcp:", 4) == 0) {
		err = parse_tcp(&g, arg, arg + 4);
		if (err)
			return err;
	} else if (strncmp(arg, "unix:", 5) == 0) {
		if (!arg[5])
			return log_set_error(-EINVAL, "--gdb unix:PATH needs a path");
		if (strlen(arg + 5) >= sizeof(g.path))
			return log_set_error(-EINVAL, "--gdb %s: a socket path has at most %zu bytes",
					     arg, sizeof(g.path) - 1);
		strcpy(g.path, arg + 5);
		g.is_unix = true;
	} else {
		return log_set_error(-EINVAL, "--gdb is tcp:HOST:PORT or unix:PATH, not '%s'", arg);
	}
	cfg->gdb = g;
	return 0;
}

const struct config_resource gdb_resource = {
    .option = "gdb",
    .option_arg = true,
    .option_help = "  --gdb tcp:HOST:PORT|unix:PATH\n"
		   "                         serve the GDB remote protocol there; the guest waits\n"
		   "                         for the debugger before its first instruction\n",
    .parse_option = parse_option,
};
