#include "arch/x86/firmware.h"
#include "base/guest_mem.h"
#include "base/kvm.h"
#include "base/input_file.h"
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

/* The size rules of the header's comment; one reason as the thread's last error. */
static int check_size(const char *path, uint64_t size)
{
	if (size > X86_FIRMWARE_MAX_SIZE)
		return log_set_error(-EFBIG,
				     "--firmware %s: %llu bytes; a BIOS image is at most "
				     "16 MiB",
				     path, (unsigned long long)size);
	if (size == 0 || size % X86_FIRMWARE_ALIGN)
		return log_set_error(-EINVAL,
				     "--firmware %s: %llu bytes is not a multiple of 64 "
				     "KiB, as a BIOS image is",
				     path, (unsigned long long)size);
	return 0;
}

int x86_firmware_check(const char *path)
{
	struct stat st;
	/* Non-blocking, so that a FIFO fails below instead of hanging here. */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);

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
	return check_size(path, (uint64_t)st.st_size);
}

int x86_firmware_load(struct x86_firmware *fw, int kvm_fd, int vm_fd, uint32_t slot,
		      const struct guest_mem *mem, const char *path)
{
	struct kvm_userspace_memory_region region;
	uint64_t size, alias;
	int fd, ret;

	memset(fw, 0, sizeof(*fw));
	ret = input_file_open("--firmware", path, &fd, &size);
	if (ret)
		return ret;
	/* Checked again on the file opened: it may have changed since the config was. */
	ret = check_size(path, size);
	if (ret) {
		log_error("%s", log_last_error());
		goto out;
	}
	fw->size = (size_t)size;
	alias = fw->size < X86_FIRMWARE_LOW_ALIAS ? fw->size : X86_FIRMWARE_LOW_ALIAS;
	fw->image =
	    mmap(NULL, fw->size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (fw->image == MAP_FAILED) {
		ret = -errno;
		fw->image = NULL;
		log_error("--firmware %s: cannot map %zu bytes: %s", path, fw->size,
			  strerror(errno));
		goto out;
	}
	ret = input_file_read(fd, "--firmware", path, 0, fw->image, fw->size);
	if (ret)
		goto out;
	ret = guest_mem_write(mem, X86_FIRMWARE_LOW_END - alias,
			      (uint8_t *)fw->image + fw->size - alias, alias);
	if (ret) {
		log_error("--firmware: guest RAM does not cover 0x%llx-0xfffff",
			  (unsigned long long)(X86_FIRMWARE_LOW_END - alias));
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
