/* tapctl: a persistent tap for bench/virtio/run's network benchmark.
 *
 *     tapctl add NAME    create tap NAME (persistent, no packet info) and set it up
 *     tapctl del NAME    remove it
 *
 * The tap must outlive each VMM so that its kernel counters (the frames the
 * guest sent are the tap's rx_packets/rx_bytes) can be read before and
 * after a run.  Static, no dependencies: the KVM test box has busybox only,
 * whose `ip` has no `tuntap`.  Exit status 0, 1 on failure (message on
 * stderr), 2 on usage errors. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

static int set_up(const char *name)
{
	struct ifreq ifr;
	int s = socket(AF_INET, SOCK_DGRAM, 0);

	if (s < 0)
		return -1;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0) {
		close(s);
		return -1;
	}
	ifr.ifr_flags |= IFF_UP;
	int r = ioctl(s, SIOCSIFFLAGS, &ifr);
	close(s);
	return r;
}

int main(int argc, char **argv)
{
	struct ifreq ifr;

	if (argc != 3 || (strcmp(argv[1], "add") && strcmp(argv[1], "del")) ||
	    strlen(argv[2]) >= IFNAMSIZ) {
		fprintf(stderr, "usage: tapctl add|del NAME (NAME at most %d characters)\n",
			IFNAMSIZ - 1);
		return 2;
	}
	int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "tapctl: /dev/net/tun: %s (is the tun module loaded?)\n",
			strerror(errno));
		return 1;
	}
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", argv[2]);
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		fprintf(stderr, "tapctl: tap %s: TUNSETIFF: %s\n", argv[2], strerror(errno));
		return 1;
	}
	if (ioctl(fd, TUNSETPERSIST, argv[1][0] == 'a' ? 1 : 0) < 0) {
		fprintf(stderr, "tapctl: tap %s: TUNSETPERSIST: %s\n", argv[2], strerror(errno));
		return 1;
	}
	close(fd);
	if (argv[1][0] == 'a' && set_up(argv[2]) < 0) {
		fprintf(stderr, "tapctl: tap %s: cannot set it up: %s\n", argv[2], strerror(errno));
		return 1;
	}
	return 0;
}
