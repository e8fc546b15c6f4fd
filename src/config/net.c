/* Network interfaces (virtio-net on a tap): --net tap=NAME[,mac=MAC][,id=NAME][,rx_bw=..]
 * [,vhost=on][,queues=N]..., the "network-interfaces" section and PUT /network-interfaces/{id}
 * ({"iface_id", "host_dev_name", "guest_mac", "rx_rate_limiter", "tx_rate_limiter"}, and skiff's
 * own "vhost" and "num_queues"),
 * PATCH /network-interfaces/{id}'s body, and their checks. */
#include "config/json_fields.h"
#include "config/rate_limiter.h"
#include "config/resource.h"
#include "base/log.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
	if (sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
		   &tail) != 6)
		return -1;
	for (int i = 0; i < 6; i++)
		mac[i] = (uint8_t)v[i];
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

/* --- the command line --- */

int vm_config_add_net(struct vm_config *cfg, const char *spec)
{
	struct net_config nc = {0};
	char buf[256];
	char *fields[9];
	int n;

	if (cfg->nr_nets == VM_CONFIG_MAX_NETS)
		return log_set_error(-ENOSPC, "--net %s: at most %d interfaces", spec,
				     VM_CONFIG_MAX_NETS);
	if (config_copy_field(buf, sizeof(buf), spec) ||
	    (n = config_split_fields(buf, fields, 9)) < 1)
		return log_set_error(-EINVAL, "--net %s: expected tap=NAME[,mac=MAC][,id=NAME]",
				     spec);
	snprintf(nc.id, sizeof(nc.id), "net%d", cfg->nr_nets);
	for (int i = 0; i < n; i++) {
		const char *f = fields[i];

		if (strncmp(f, "tap=", 4) == 0) {
			if (!f[4] || config_copy_field(nc.tap, sizeof(nc.tap), f + 4) ||
			    strchr(f + 4, '/'))
				return log_set_error(-EINVAL,
						     "--net %s: a tap name is 1 to 15 "
						     "characters, without '/'",
						     spec);
		} else if (strncmp(f, "mac=", 4) == 0) {
			if (vm_config_parse_mac(f + 4, nc.mac))
				return log_set_error(-EINVAL,
						     "--net %s: mac=%s is not a MAC "
						     "address (xx:xx:xx:xx:xx:xx)",
						     spec, f + 4);
			if (nc.mac[0] & 1)
				return log_set_error(-EINVAL,
						     "--net %s: mac=%s is a multicast "
						     "address",
						     spec, f + 4);
			nc.has_mac = true;
		} else if (strncmp(f, "id=", 3) == 0 &&
			   config_copy_field(nc.id, sizeof(nc.id), f + 3) == 0) {
		} else if (strncmp(f, "rx_bw=", 6) == 0) {
			if (config_parse_bucket("--net", "rx_bw", f + 6,
						&nc.rx_rate_limiter.bandwidth))
				return -EINVAL;
		} else if (strncmp(f, "rx_ops=", 7) == 0) {
			if (config_parse_bucket("--net", "rx_ops", f + 7, &nc.rx_rate_limiter.ops))
				return -EINVAL;
		} else if (strncmp(f, "tx_bw=", 6) == 0) {
			if (config_parse_bucket("--net", "tx_bw", f + 6,
						&nc.tx_rate_limiter.bandwidth))
				return -EINVAL;
		} else if (strncmp(f, "tx_ops=", 7) == 0) {
			if (config_parse_bucket("--net", "tx_ops", f + 7, &nc.tx_rate_limiter.ops))
				return -EINVAL;
		} else if (strncmp(f, "vhost=", 6) == 0) {
			if (strcmp(f + 6, "on") != 0 && strcmp(f + 6, "off") != 0)
				return log_set_error(
				    -EINVAL, "--net %s: vhost=%s: expected on or off", spec, f + 6);
			nc.vhost = strcmp(f + 6, "on") == 0;
		} else if (strncmp(f, "queues=", 7) == 0) {
			if (vm_config_parse_queues("--net", spec, "queues", f + 7,
						   NET_MAX_QUEUE_PAIRS, &nc.num_queues))
				return -EINVAL;
		} else {
			return log_set_error(-EINVAL,
					     "--net %s: unknown or too long option '%s' "
					     "(expected tap=, mac=, id=, rx_bw=, rx_ops=, tx_bw=, "
					     "tx_ops=, vhost= or queues=)",
					     spec, f);
		}
	}
	if (!nc.tap[0])
		return log_set_error(-EINVAL, "--net %s: tap=NAME is required", spec);
	cfg->nets[cfg->nr_nets++] = nc;
	return 0;
}

/* --- the table --- */

int vm_config_put_net(struct vm_config *cfg, const struct net_config *nc)
{
	int i = -1;

	for (int j = 0; j < cfg->nr_nets; j++)
		if (strcmp(cfg->nets[j].id, nc->id) == 0)
			i = j;
	for (int j = 0; j < cfg->nr_nets; j++) {
		if (j == i)
			continue;
		if (strcmp(cfg->nets[j].tap, nc->tap) == 0)
			return log_set_error(-EINVAL,
					     "network interface %s: interface %s already "
					     "uses %s",
					     nc->id, cfg->nets[j].id, nc->tap);
		if (nc->has_mac && cfg->nets[j].has_mac &&
		    memcmp(cfg->nets[j].mac, nc->mac, 6) == 0)
			return log_set_error(-EINVAL,
					     "network interface %s: interface %s already "
					     "has that guest_mac",
					     nc->id, cfg->nets[j].id);
	}
	if (i < 0) {
		if (cfg->nr_nets == VM_CONFIG_MAX_NETS)
			return log_set_error(-ENOSPC,
					     "network interface %s: at most %d "
					     "interfaces",
					     nc->id, VM_CONFIG_MAX_NETS);
		i = cfg->nr_nets++;
	}
	cfg->nets[i] = *nc;
	return 0;
}

/* --- checks --- */

/* The kernel's vhost-net moves the packets of a vhost interface: skiff can neither limit them
 * nor see the guest memory the kernel writes. */
static int check_vhost(const struct net_config *nc, const char *what)
{
	if (!nc->vhost)
		return 0;
	if (config_rate_limited(&nc->rx_rate_limiter) || config_rate_limited(&nc->tx_rate_limiter))
		return log_set_error(
		    -EINVAL,
		    "%s %s: vhost=on cannot be rate-limited (the kernel's vhost-net "
		    "moves the packets, not skiff); remove the rate limiter or "
		    "vhost=on",
		    what, nc->id);
	/* One /dev/vhost-net fd drives one queue pair; skiff hands the kernel only the first. */
	if (nc->num_queues > 1)
		return log_set_error(-EINVAL,
				     "%s %s: vhost=on supports one queue pair; remove queues=%u "
				     "(num_queues) or vhost=on",
				     what, nc->id, nc->num_queues);
	return 0;
}

static int validate(const struct vm_config *cfg)
{
	int ret;

	for (int i = 0; i < cfg->nr_nets; i++) {
		const struct net_config *nc = &cfg->nets[i];

		if ((ret = config_check_id("--net", nc->id)) ||
		    (ret = check_vhost(nc, "network interface")))
			return ret;
		if (nc->vhost && cfg->track_dirty_pages)
			return log_set_error(
			    -EINVAL,
			    "network interface %s: vhost=on cannot be combined with "
			    "track_dirty_pages (the kernel's writes to guest memory "
			    "would be missing from Diff snapshots)",
			    nc->id);
		/* A pair per vCPU is what the guest's driver uses (it steers by CPU); more would
		 * sit idle. */
		if (nc->num_queues > (unsigned)cfg->nr_cpus)
			return log_set_error(
			    -EINVAL,
			    "network interface %s: %u queue pairs is more than the "
			    "vCPU count (%d)",
			    nc->id, nc->num_queues, cfg->nr_cpus);
		for (int j = 0; j < i; j++) {
			if (strcmp(cfg->nets[j].id, nc->id) == 0)
				return log_set_error(-EINVAL, "two interfaces have id=%s", nc->id);
			if (strcmp(cfg->nets[j].tap, nc->tap) == 0)
				return log_set_error(-EINVAL, "two interfaces use tap %s", nc->tap);
			if (nc->has_mac && cfg->nets[j].has_mac &&
			    memcmp(cfg->nets[j].mac, nc->mac, 6) == 0)
				return log_set_error(-EINVAL, "two interfaces have the same MAC "
							      "address");
		}
	}
	return 0;
}

/* --- JSON --- */

static int apply(const struct config_target *t, const char *path_id, json_t *obj, const char *what)
{
	static const char *const known[] = {"iface_id",	       "host_dev_name",	  "guest_mac",
					    "rx_rate_limiter", "tx_rate_limiter", "mtu",
					    "vhost",	       "num_queues",	  NULL};
	struct net_config nc = {0};
	json_t *dev;
	char mac[32];
	bool has_mac, has_vhost, present;
	uint64_t queues = 0;
	unsigned given;
	int ret;

	if ((ret = cj_check_fields(what, obj, known)) ||
	    (ret = cj_id(what, obj, "iface_id", nc.id)) ||
	    (ret = cj_path_id(what, "iface_id", nc.id, path_id)))
		return ret;
	dev = cj_field(obj, "host_dev_name");
	if (!dev)
		return cj_missing(what, "host_dev_name");
	if (!json_is_string(dev))
		return cj_wrong_type(what, "host_dev_name", "a string");
	if (!vm_config_tap_name_valid(json_string_value(dev)))
		return log_set_error(-EINVAL,
				     "field 'host_dev_name' in %s must be an interface "
				     "name of 1 to 15 bytes, without '/', ':' or spaces",
				     what);
	strcpy(nc.tap, json_string_value(dev));
	if ((ret = cj_string(what, obj, "guest_mac", false, mac, sizeof(mac), &has_mac)) ||
	    (ret = cj_rate_limiter(what, obj, "rx_rate_limiter", &nc.rx_rate_limiter, &given)) ||
	    (ret = cj_rate_limiter(what, obj, "tx_rate_limiter", &nc.tx_rate_limiter, &given)) ||
	    (ret = cj_unsupported(what, obj, "mtu", "an MTU is not supported by skiff")) ||
	    (ret = cj_bool(what, obj, "vhost", false, &nc.vhost, &has_vhost)) ||
	    (ret = cj_uint(what, obj, "num_queues", false, 1, NET_MAX_QUEUE_PAIRS, &queues,
			   &present)))
		return ret;
	nc.num_queues = (unsigned)queues;
	if ((ret = check_vhost(&nc, what)))
		return ret;
	if (has_mac) {
		if (vm_config_parse_mac(mac, nc.mac))
			return log_set_error(-EINVAL,
					     "field 'guest_mac' in %s is \"%s\"; "
					     "expected xx:xx:xx:xx:xx:xx",
					     what, mac);
		if (nc.mac[0] & 1)
			return log_set_error(-EINVAL,
					     "field 'guest_mac' in %s is a multicast "
					     "address",
					     what);
		nc.has_mac = true;
	}
	return vm_config_put_net(t->vm, &nc);
}

static json_t *net_json(const struct net_config *nc)
{
	char mac[18];

	snprintf(mac, sizeof(mac), "%02x:%02x:%02x:%02x:%02x:%02x", nc->mac[0], nc->mac[1],
		 nc->mac[2], nc->mac[3], nc->mac[4], nc->mac[5]);
	json_t *o = json_pack("{s:s, s:s, s:s?, s:o, s:o}", "iface_id", nc->id, "host_dev_name",
			      nc->tap, "guest_mac", nc->has_mac ? mac : NULL, "rx_rate_limiter",
			      cj_rate_limiter_dump(&nc->rx_rate_limiter), "tx_rate_limiter",
			      cj_rate_limiter_dump(&nc->tx_rate_limiter));

	/* skiff's own key, shown only when on (Firecracker's documents stay as they were). */
	if (o && nc->vhost)
		json_object_set_new(o, "vhost", json_true());
	if (o && nc->num_queues)
		json_object_set_new(o, "num_queues", json_integer(nc->num_queues));
	return o;
}

static json_t *dump(const struct vm_config *cfg)
{
	json_t *nets = json_array();

	for (int i = 0; nets && i < cfg->nr_nets; i++) {
		if (json_array_append_new(nets, net_json(&cfg->nets[i]))) {
			json_decref(nets);
			return NULL;
		}
	}
	return nets;
}

int config_json_network_interface(struct vm_config *cfg, const char *path_id, const char *body,
				  size_t len)
{
	return config_resource_put(&net_resource, cfg, path_id, body, len);
}

int config_json_network_interface_update(const struct vm_config *cfg, const char *path_id,
					 const char *body, size_t len, struct net_update *out)
{
	static const char *const known[] = {"iface_id", "rx_rate_limiter", "tx_rate_limiter", NULL};
	const char *what = "network-interface";
	json_t *obj = cj_parse_object(body, len, what);
	struct net_update u = {0};
	int i, ret;

	if (!obj)
		return -EINVAL;
	if ((ret = cj_check_fields(what, obj, known)) ||
	    (ret = cj_id(what, obj, "iface_id", u.iface_id)) ||
	    (ret = cj_path_id(what, "iface_id", u.iface_id, path_id)))
		goto out;
	for (i = 0; i < cfg->nr_nets && strcmp(cfg->nets[i].id, u.iface_id) != 0; i++)
		;
	if (i == cfg->nr_nets) {
		ret = log_set_error(-EINVAL, "network interface %s does not exist", u.iface_id);
		goto out;
	}
	/* What the body does not name stays as it is. */
	u.rx_rate_limiter = cfg->nets[i].rx_rate_limiter;
	u.tx_rate_limiter = cfg->nets[i].tx_rate_limiter;
	if ((ret =
		 cj_rate_limiter(what, obj, "rx_rate_limiter", &u.rx_rate_limiter, &u.rx_given)) ||
	    (ret = cj_rate_limiter(what, obj, "tx_rate_limiter", &u.tx_rate_limiter, &u.tx_given)))
		goto out;
	if (cfg->nets[i].vhost) {
		struct net_config nc = cfg->nets[i];

		nc.rx_rate_limiter = u.rx_rate_limiter;
		nc.tx_rate_limiter = u.tx_rate_limiter;
		if ((ret = check_vhost(&nc, what)))
			goto out;
	}
	*out = u;
out:
	json_decref(obj);
	return ret;
}

static int count(const struct vm_config *cfg)
{
	return cfg->nr_nets;
}

const struct config_resource net_resource = {
    .name = "network-interfaces",
    .shape = CONFIG_ARRAY,
    .in_full_config = true,
    .object_name = "network-interface",
    .api_path = "/network-interfaces/",
    .apply = apply,
    .dump = dump,
    .option = "net",
    .option_arg = true,
    .option_help = "  --net tap=NAME[,mac=MAC][,id=NAME][,LIMIT]...[,vhost=on][,queues=N]\n"
		   "                         virtio-net on a tap interface; repeatable; LIMIT is\n"
		   "                         rx_bw=SIZE/MS, rx_ops=N/MS, tx_bw=.. or tx_ops=..\n"
		   "                         (docs/rate-limiters.md); vhost=on: the kernel's\n"
		   "                         vhost-net (/dev/vhost-net) moves the packets;\n"
		   "                         queues= RX/TX queue pairs (1 to the vCPU count, at\n"
		   "                         most 8; above 1 the tap must be multi_queue)\n",
    .option_label = "--net",
    .parse_option = vm_config_add_net,
    .count = count,
    .validate = validate,
};
