#include "virtio/net_spec.h"
#include "config/vm_config.h"
#include "base/log.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>

int net_config_space_init(struct net_config_space *cs, const struct net_config *cfg,
			  const char *name)
{
	const uint8_t *m = cs->mac;

	if (cfg->has_mac) {
		memcpy(cs->mac, cfg->mac, 6);
	} else {
		if (getrandom(cs->mac, 6, 0) != 6) {
			int err = -errno;

			log_error("%s: getrandom for a MAC address: %s", name, strerror(errno));
			return err;
		}
		cs->mac[0] = (cs->mac[0] & ~0x01) | 0x02; /* unicast, local */
		log_info("%s: no MAC address given, using %02x:%02x:%02x:%02x:%02x:%02x", name,
			 m[0], m[1], m[2], m[3], m[4], m[5]);
	}
	cs->status = VIRTIO_NET_S_LINK_UP;
	cs->max_virtqueue_pairs = 1;
	return 0;
}
