/* garp-watch: waits for a gratuitous ARP (sender IP = target IP) for one address on one
 * interface, as a switch or neighbour would see a guest announce itself after a live migration
 * (busybox has no tcpdump). Built static by tests/nested/run; /vmm/garp-watch in L1.
 *
 *   garp-watch IFNAME IPV4 SECONDS
 *
 * Prints "garp: IPV4 is at MAC (request|reply) after S s" and exits 0 at the first one, or
 * "garp: none for IPV4 on IFNAME in SECONDS s" and exits 1. Other frames are ignored. */
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/if_ether.h>
#include <linux/if_packet.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	struct sockaddr_ll sll = {.sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ARP)};
	struct in_addr want;
	double start, limit;
	int fd;

	if (argc != 4 || inet_pton(AF_INET, argv[2], &want) != 1 || atoi(argv[3]) <= 0) {
		fprintf(stderr, "usage: garp-watch IFNAME IPV4 SECONDS\n");
		return 2;
	}
	sll.sll_ifindex = (int)if_nametoindex(argv[1]);
	if (!sll.sll_ifindex) {
		printf("garp: no interface %s\n", argv[1]);
		return 1;
	}
	fd = socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC, htons(ETH_P_ARP));
	if (fd < 0 || bind(fd, (struct sockaddr *)&sll, sizeof(sll)) < 0) {
		printf("garp: AF_PACKET on %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	start = now_s();
	limit = start + atoi(argv[3]);
	for (;;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		struct ether_arp a;
		double left = limit - now_s();
		ssize_t n;

		if (left <= 0)
			break;
		if (poll(&p, 1, (int)(left * 1000) + 1) <= 0)
			continue;
		n = recv(fd, &a, sizeof(a), 0);
		/* SOCK_DGRAM: the ARP packet without its Ethernet header. */
		if (n < (ssize_t)sizeof(a) || ntohs(a.ea_hdr.ar_hrd) != ARPHRD_ETHER ||
		    ntohs(a.ea_hdr.ar_pro) != ETH_P_IP || a.ea_hdr.ar_hln != 6 ||
		    a.ea_hdr.ar_pln != 4)
			continue;
		if (memcmp(a.arp_spa, &want, 4) || memcmp(a.arp_tpa, &want, 4))
			continue;
		printf("garp: %s is at %02x:%02x:%02x:%02x:%02x:%02x (%s) after %.2f s\n", argv[2],
		       a.arp_sha[0], a.arp_sha[1], a.arp_sha[2], a.arp_sha[3], a.arp_sha[4],
		       a.arp_sha[5], ntohs(a.ea_hdr.ar_op) == ARPOP_REQUEST ? "request" : "reply",
		       now_s() - start);
		return 0;
	}
	printf("garp: none for %s on %s in %s s\n", argv[2], argv[1], argv[3]);
	return 1;
}
