#include "vmm/uffd.h"
#include "base/guest_mem.h"
#include "base/log.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

/* The JSON array of the regions (the header says its shape). */
static int describe(const struct guest_mem *mem, char *buf, size_t size)
{
	uint64_t offset = 0;
	size_t n = 0;
	int len;

	buf[n++] = '[';
	for (int i = 0; i < mem->nr_regions; i++) {
		const struct guest_region *r = &mem->regions[i];

		len = snprintf(buf + n, size - n,
			       "%s{\"base_host_virt_addr\": %llu, \"size\": %llu, \"offset\": %llu, "
			       "\"page_size\": 4096, \"page_size_kib\": 4}",
			       i ? ", " : "", (unsigned long long)(uintptr_t)r->hva,
			       (unsigned long long)r->size, (unsigned long long)offset);
		if (len < 0 || (size_t)len >= size - n - 1)
			return -ENOSPC;
		n += (size_t)len;
		offset += r->size;
	}
	buf[n++] = ']';
	buf[n] = '\0';
	return (int)n;
}

static int send_to_handler(int uffd, const char *socket_path, const char *json, size_t len)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	char control[CMSG_SPACE(sizeof(int))] = {0};
	struct iovec iov = {.iov_base = (void *)json, .iov_len = len};
	struct msghdr msg = {.msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = control,
			     .msg_controllen = sizeof(control)};
	struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
	int sock, ret = 0;
	ssize_t sent;

	if (strlen(socket_path) >= sizeof(addr.sun_path))
		return log_set_error(-ENAMETOOLONG, "the Uffd handler's socket path is longer than "
						    "%zu bytes",
				     sizeof(addr.sun_path) - 1);
	memcpy(addr.sun_path, socket_path, strlen(socket_path) + 1);
	sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (sock < 0)
		return log_set_error(-errno, "socket: %s", strerror(errno));
	if (connect(sock, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		ret = log_set_error(-errno, "cannot reach the Uffd page-fault handler at %s: %s",
				    socket_path, strerror(errno));
		goto out;
	}
	cmsg->cmsg_level = SOL_SOCKET;
	cmsg->cmsg_type = SCM_RIGHTS;
	cmsg->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cmsg), &uffd, sizeof(int));
	do
		sent = sendmsg(sock, &msg, MSG_NOSIGNAL);
	while (sent < 0 && errno == EINTR);
	if (sent < 0)
		ret = log_set_error(-errno, "cannot send the userfaultfd to the handler at %s: %s",
				    socket_path, strerror(errno));
	else if ((size_t)sent != len)
		ret = log_set_error(-EIO, "the handler at %s took %zd of the %zu bytes of the memory "
					  "description",
				    socket_path, sent, len);
out:
	close(sock);
	return ret;
}

int uffd_hand_over(struct guest_mem *mem, const char *socket_path)
{
	struct uffdio_api api = {.api = UFFD_API};
	char json[4096];
	int uffd, len, ret;

	len = describe(mem, json, sizeof(json));
	if (len < 0)
		return log_set_error(len, "the memory description does not fit in %zu bytes",
				     sizeof(json));
	uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (uffd < 0)
		return log_set_error(-errno, "userfaultfd: %s%s", strerror(errno),
				     errno == EPERM ? " (vm.unprivileged_userfaultfd is 0 and skiff "
						      "lacks CAP_SYS_PTRACE)"
						    : "");
	if (ioctl(uffd, UFFDIO_API, &api) < 0) {
		ret = log_set_error(-errno, "UFFDIO_API: %s", strerror(errno));
		goto out;
	}
	for (int i = 0; i < mem->nr_regions; i++) {
		struct uffdio_register reg = {
		    .range = {.start = (uint64_t)(uintptr_t)mem->regions[i].hva,
			      .len = mem->regions[i].size},
		    .mode = UFFDIO_REGISTER_MODE_MISSING};

		if (ioctl(uffd, UFFDIO_REGISTER, &reg) < 0) {
			ret = log_set_error(-errno, "UFFDIO_REGISTER of guest memory 0x%llx+0x%llx: %s",
					    (unsigned long long)mem->regions[i].gpa,
					    (unsigned long long)mem->regions[i].size,
					    strerror(errno));
			goto out;
		}
	}
	ret = send_to_handler(uffd, socket_path, json, (size_t)len);
	if (!ret)
		log_info("snapshot: guest memory is served by the Uffd handler at %s", socket_path);
out:
	close(uffd);
	return ret;
}
