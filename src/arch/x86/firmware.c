#include "arch/x86/firmware.h"
#include "base/guest_mem.h"
#include "base/kvm.h"
#include "base/log.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define FOUR_GIB (1ULL << 32)

int x86_firmware_check(const char *path)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return log_set_error(-errno, "--firmware %s: %s", path, strerror(errno));
	if (fstat(fd, &st) < 0) {
		int err = errno;

		close(fd);
		return log_set_error(-err, "--firmware %s: %s", path, strerror(err));
	}
	close(fd);
	if (!S_ISREG(st.st_mode))
		return log_set_error(-EINVAL, "--firmware %s: not a regular file", path);
	if ((uint64_t)st.st_size > X86_FIRMWARE_MAX_SIZE)
		return log_set_error(-EFBIG,
				     "--firmware %s: %lld bytes; a BIOS image is at most "
				     "16 MiB",
				     path, (long long)st.st_size);
	if (st.st_size == 0 || (uint64_t)st.st_size % X86_FIRMWARE_ALIGN)
		return log_set_error(-EINVAL,
				     "--firmware %s: %lld bytes is not a multiple of 64 "
				     "KiB, as a BIOS image is",
				     path, (long long)st.st_size);
	return 0;
}

static int read_all(int fd, uint8_t *buf, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = read(fd, buf + done, len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		done += (size_t)n;
	}
	return 0;
}

int x86_firmware_load(struct x86_firmware *fw, int kvm_fd, int vm_fd, uint32_t slot,
		      const struct guest_mem *mem, const char *path)
{
	struct kvm_userspace_memory_region region;
	struct stat st;
	int fd, ret;

	memset(fw, 0, sizeof(*fw));
	/* Checked again here: the file may have changed since the config was. */
	ret = x86_firmware_check(path);
	if (ret) {
		log_error("%s", log_last_error());
		return ret;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		ret = -errno;
		log_error("--firmware %s: %s", path, strerror(errno));
		goto out;
	}
	fw->size = (size_t)st.st_size;
	fw->image =
	    mmap(NULL, fw->size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (fw->image == MAP_FAILED) {
		ret = -errno;
		fw->image = NULL;
		log_error("--firmware %s: cannot map %zu bytes: %s", path, fw->size,
			  strerror(errno));
		goto out;
	}
	ret = read_all(fd, fw->image, fw->size);
	if (ret) {
		log_error("--firmware %s: cannot read it: %s", path, strerror(-ret));
		goto out;
	}
	ret = guest_mem_write(mem, X86_FIRMWARE_LOW_BASE,
			      (uint8_t *)fw->image + fw->size - X86_FIRMWARE_LOW_ALIAS,
			      X86_FIRMWARE_LOW_ALIAS);
	if (ret) {
		log_error("--firmware: guest RAM does not cover 0x%llx-0xfffff",
			  (unsigned long long)X86_FIRMWARE_LOW_BASE);
		goto out;
	}
	region = (struct kvm_userspace_memory_region){
	    .slot = slot,
	    .flags = kvm_check_cap(kvm_fd, KVM_CAP_READONLY_MEM) > 0 ? KVM_MEM_READONLY : 0,
	    .guest_phys_addr = FOUR_GIB - fw->size,
	    .memory_size = fw->size,
	    .userspace_addr = (uint64_t)(uintptr_t)fw->image,
	};
	if (ioctl(vm_fd, KVM_SET_USER_MEMORY_REGION, &region) < 0) {
		ret = -errno;
		log_error("--firmware: KVM_SET_USER_MEMORY_REGION at 0x%llx failed: %s",
			  (unsigned long long)region.guest_phys_addr, strerror(errno));
		goto out;
	}
	ret = 0;
out:
	if (fd >= 0)
		close(fd);
	if (ret)
		x86_firmware_unload(fw);
	return ret;
}

void x86_firmware_unload(struct x86_firmware *fw)
{
	if (fw->image)
		munmap(fw->image, fw->size);
	fw->image = NULL;
}
