/* Network ops, in the cloned child, in the sandbox's own network namespace, as root there:
 * loopback up, and the sandbox's end of its veth pair. Plain ioctls on a datagram socket; no
 * netlink code is needed for one address and one route. */
#include "internal.h"

#include <arpa/inet.h>
#include <net/if.h>
#include <net/route.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

int op_loopback_up(void)
{
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct ifreq ifr;
	if (s < 0) return -1;
	memset(&ifr, 0, sizeof ifr);
	sbx_strlcpy(ifr.ifr_name, "lo", IFNAMSIZ);
	if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0) { int e = errno; close(s); errno = e; return -1; }
	ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
	if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0) { int e = errno; close(s); errno = e; return -1; }
	close(s);
	return 0;
}

/* The sandbox's end of its veth pair, in its own network namespace: address, up, default route.
 * Plain ioctls: no netlink code is needed for one address and one route. */
int op_net_ifup(const char *name, uint32_t addr, uint32_t prefix, uint32_t gateway)
{
	struct ifreq ifr;
	struct rtentry rt;
	struct sockaddr_in *sin;
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), e;
	if (s < 0) return -1;
	memset(&ifr, 0, sizeof ifr);
	sbx_strlcpy(ifr.ifr_name, name, IFNAMSIZ);
	sin = (struct sockaddr_in *)&ifr.ifr_addr;
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = addr;
	if (ioctl(s, SIOCSIFADDR, &ifr) < 0) goto fail;
	sin->sin_addr.s_addr = prefix ? htonl(~0u << (32 - prefix)) : 0;
	if (ioctl(s, SIOCSIFNETMASK, &ifr) < 0) goto fail;
	if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0) goto fail;
	ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
	if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0) goto fail;
	memset(&rt, 0, sizeof rt);
	((struct sockaddr_in *)&rt.rt_dst)->sin_family = AF_INET;
	((struct sockaddr_in *)&rt.rt_genmask)->sin_family = AF_INET;
	((struct sockaddr_in *)&rt.rt_gateway)->sin_family = AF_INET;
	((struct sockaddr_in *)&rt.rt_gateway)->sin_addr.s_addr = gateway;
	rt.rt_flags = RTF_UP | RTF_GATEWAY;
	rt.rt_dev = ifr.ifr_name;
	if (ioctl(s, SIOCADDRT, &rt) < 0) goto fail;
	close(s);
	return 0;
fail:
	e = errno;
	close(s);
	errno = e;
	return -1;
}
