/* virtio-net's request handling (src/virtio/net.c) over fuzzed guest memory and descriptor
 * chains, driven as tests/fuzz/virtio_dev.h describes, on a fake tap: a SOCK_SEQPACKET
 * socketpair (one packet per read and write, as a tap with IFF_VNET_HDR). The input starts with
 * a flag byte (bit 0: the backend refuses offloads) and up to 4 packets (u8 count, then each a
 * u16 length and its bytes: a virtio_net_hdr_v1 and the frame, or a runt); the
 * first waits on the backend when the device is activated, the others are sent one before each
 * kick, and the device hands them to the guest's RX buffers. What the guest transmits is read
 * off the other end and dropped. */
#include "fuzz/virtio_dev.h"
#include "virtio/net.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

static struct fuzz_dev fd;
static int peer = -1; /* the backend's other end: the "network" */
static bool offload_refused;

static int fake_set_offload(int sock, unsigned tun_flags)
{
	/* A backend that refuses some offload sets, as an old tap would. */
	return offload_refused && tun_flags ? -EINVAL : 0;
}

static void drain(int sock)
{
	uint8_t buf[65536 + 64];

	while (recv(sock, buf, sizeof(buf), MSG_DONTWAIT) >= 0)
		;
}

#define MAX_PACKETS 4
#define MAX_PACKET  (12 + 65535) /* a vnet header and the largest GSO frame a tap gives */

static uint8_t packets[MAX_PACKETS][MAX_PACKET];
static size_t packet_len[MAX_PACKETS];
static unsigned nr_packets, next_packet;

static void send_next(void)
{
	if (next_packet < nr_packets) {
		(void)send(peer, packets[next_packet], packet_len[next_packet], MSG_DONTWAIT);
		next_packet++;
	}
}

static void before_kick(struct fuzz_dev *f, uint16_t q)
{
	send_next();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_input in = {data, size};

	if (peer < 0) {
		struct net_config cfg = {.tap = "fuzz0", .has_mac = true, .id = "eth0"};
		struct virtio_net_backend be = {.set_offload = fake_set_offload};
		struct virtio_device *dev;
		int sv[2];

		fuzz_quiet_log();
		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv))
			abort();
		be.fd = sv[0];
		peer = sv[1];
		if (virtio_net_create_on(&cfg, &be, &dev))
			abort();
		fuzz_dev_init(&fd, dev, "fuzz-net");
		fd.before_kick = before_kick;
	}
	offload_refused = fuzz_u8(&in) & 1;
	nr_packets = fuzz_u8(&in) % (MAX_PACKETS + 1);
	for (unsigned i = 0; i < nr_packets; i++)
		packet_len[i] = fuzz_bytes(&in, packets[i], fuzz_u16(&in));
	next_packet = 0;
	send_next();
	fuzz_dev_run(&fd, &in);
	drain(peer);
	return 0;
}
