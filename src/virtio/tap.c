#include "virtio/tap.h"
#include "virtio/net_spec.h"
#include "base/log.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

static void log_attach_error(const char *name, int err)
{
	const char *shown = name[0] ? name : "(any)";

	switch (err) {
	case EPERM:
		log_error("tap %s: not allowed to attach to it or create it; create it first, e.g. "
			  "`ip tuntap add %s mode tap user $USER`",
			  shown, name[0] ? name : "NAME");
		break;
	case EBUSY:
		log_error("tap %s: already in use by another process", shown);
		break;
	case EINVAL:
		log_error("tap %s: cannot attach (is it a tun rather than a tap, or multi-queue?)",
			  shown);
		break;
	default:
		log_error("tap %s: TUNSETIFF: %s", shown, strerror(err));
	}
}

static int open_queue(const char *name, short extra_flags, unsigned nr_queues,
		      char actual[IFNAMSIZ])
{
	struct ifreq ifr;
	int fd, hdr_len = TAP_VNET_HDR_LEN, err;

	if (strlen(name) >= IFNAMSIZ) {
		log_error("tap %s: name longer than %d characters", name, IFNAMSIZ - 1);
		return -EINVAL;
	}
	fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		err = errno;
		log_error("tap %s: cannot open /dev/net/tun: %s%s", name, strerror(err),
			  err == ENOENT ? " (is the tun module loaded?)" : "");
		return -err;
	}
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR | extra_flags;
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		err = errno;
		if (extra_flags & IFF_MULTI_QUEUE && err == EINVAL)
			log_error(
			    "tap %s: cannot attach %u queues (made without multi_queue?); "
			    "queues=%u needs a multi_queue tap, e.g. `ip tuntap add %s mode tap "
			    "multi_queue`",
			    name, nr_queues, nr_queues, name[0] ? name : "NAME");
		else
			log_attach_error(name, err);
		close(fd);
		return -err;
	}
	if (ioctl(fd, TUNSETVNETHDRSZ, &hdr_len) < 0) {
		err = errno;
		log_error("tap %s: TUNSETVNETHDRSZ %d: %s", ifr.ifr_name, hdr_len, strerror(err));
		close(fd);
		return -err;
	}
	/* Nothing the guest has not asked for until it negotiates its features. */
	err = tap_set_offload(fd, 0);
	if (err < 0) {
		log_error("tap %s: TUNSETOFFLOAD: %s", ifr.ifr_name, strerror(-err));
		close(fd);
		return err;
	}
	snprintf(actual, IFNAMSIZ, "%s", ifr.ifr_name);
	return fd;
}

int tap_open(const char *name, char actual[IFNAMSIZ])
{
	return open_queue(name, 0, 1, actual);
}

int tap_open_queues(const char *name, unsigned n, int *fds, char actual[IFNAMSIZ])
{
	if (n <= 1) {
		fds[0] = tap_open(name, actual);
		return fds[0] < 0 ? fds[0] : 0;
	}
	for (unsigned i = 0; i < n; i++) {
		/* The first open may create the tap (and name it): the others join that one. */
		fds[i] = open_queue(i ? actual : name, IFF_MULTI_QUEUE, n, actual);
		if (fds[i] < 0) {
			int err = fds[i];

			while (i--)
				close(fds[i]);
			return err;
		}
	}
	return 0;
}

int tap_set_queue(int fd, bool attach)
{
	struct ifreq ifr;

	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_flags = attach ? IFF_ATTACH_QUEUE : IFF_DETACH_QUEUE;
	return ioctl(fd, TUNSETQUEUE, &ifr) < 0 ? -errno : 0;
}

int tap_set_offload(int fd, unsigned tun_flags)
{
	return ioctl(fd, TUNSETOFFLOAD, (unsigned long)tun_flags) < 0 ? -errno : 0;
}

unsigned tap_guest_offloads(uint64_t guest_features)
{
	unsigned tun = 0;

	if (!(guest_features & (1ULL << VIRTIO_NET_F_GUEST_CSUM)))
		return 0;
	tun |= TUN_F_CSUM;
	if (guest_features & (1ULL << VIRTIO_NET_F_GUEST_TSO4))
		tun |= TUN_F_TSO4;
	if (guest_features & (1ULL << VIRTIO_NET_F_GUEST_TSO6))
		tun |= TUN_F_TSO6;
	if (tun & (TUN_F_TSO4 | TUN_F_TSO6) && guest_features & (1ULL << VIRTIO_NET_F_GUEST_ECN))
		tun |= TUN_F_TSO_ECN;
	return tun;
}

unsigned tap_probe_offloads(int fd, int (*set_offload)(int fd, unsigned tun_flags))
{
	static const unsigned sets[] = {
	    TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN,
	    TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6,
	    TUN_F_CSUM,
	};
	unsigned accepted = 0;

	for (size_t i = 0; i < sizeof(sets) / sizeof(sets[0]); i++) {
		if (set_offload(fd, sets[i]) == 0) {
			accepted = sets[i];
			break;
		}
	}
	set_offload(fd, 0);
	return accepted;
}

uint64_t tap_offload_features(unsigned offloads)
{
	uint64_t f = 0;

	if (offloads & TUN_F_CSUM)
		f |= 1ULL << VIRTIO_NET_F_CSUM | 1ULL << VIRTIO_NET_F_GUEST_CSUM;
	if (offloads & TUN_F_TSO4)
		f |= 1ULL << VIRTIO_NET_F_HOST_TSO4 | 1ULL << VIRTIO_NET_F_GUEST_TSO4;
	if (offloads & TUN_F_TSO6)
		f |= 1ULL << VIRTIO_NET_F_HOST_TSO6 | 1ULL << VIRTIO_NET_F_GUEST_TSO6;
	if (offloads & TUN_F_TSO_ECN)
		f |= 1ULL << VIRTIO_NET_F_HOST_ECN | 1ULL << VIRTIO_NET_F_GUEST_ECN;
	return f;
}
