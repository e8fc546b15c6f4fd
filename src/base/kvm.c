#include "base/kvm.h"
#include "base/log.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

static const char *kvm_device_path(void)
{
	const char *p = getenv("SKIFF_KVM_DEVICE");

	return p && *p ? p : "/dev/kvm";
}

int kvm_open(struct kvm *kvm)
{
	const char *path = kvm_device_path();
	int version;

	kvm->fd = open(path, O_RDWR | O_CLOEXEC);
	if (kvm->fd < 0) {
		int err = errno;

		if (err == ENOENT)
			log_error("%s does not exist: load the KVM module for this CPU (modprobe "
				  "kvm_intel or kvm_amd), enable virtualization (VT-x/AMD-V) in the "
				  "firmware, or inside a VM enable nested virtualization",
				  path);
		else if (err == EACCES || err == EPERM)
			log_error("%s: permission denied: add your user to the group that owns it "
				  "(usually: sudo usermod -aG kvm $USER, then log in again) or run "
				  "as root",
				  path);
		else
			log_error("cannot open %s: %s", path, strerror(err));
		return -err;
	}

	version = ioctl(kvm->fd, KVM_GET_API_VERSION, 0);
	if (version != KVM_API_VERSION) {
		log_error("%s speaks KVM API version %d; skiff needs version %d", path, version,
			  KVM_API_VERSION);
		kvm_close(kvm);
		return -ENOTSUP;
	}
	kvm->vcpu_mmap_size = ioctl(kvm->fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (kvm->vcpu_mmap_size <= 0) {
		log_error("KVM_GET_VCPU_MMAP_SIZE failed: %s", strerror(errno));
		kvm_close(kvm);
		return -ENOTSUP;
	}
	kvm->max_vcpus = kvm_check_cap(kvm->fd, KVM_CAP_MAX_VCPUS);
	if (kvm->max_vcpus <= 0)
		kvm->max_vcpus = kvm_check_cap(kvm->fd, KVM_CAP_NR_VCPUS);
	if (kvm->max_vcpus <= 0)
		kvm->max_vcpus = 4; /* what the KVM API promises when neither cap answers */
	return 0;
}

void kvm_close(struct kvm *kvm)
{
	if (kvm->fd >= 0)
		close(kvm->fd);
	kvm->fd = -1;
}

int kvm_check_cap(int fd, long cap)
{
	int r = ioctl(fd, KVM_CHECK_EXTENSION, cap);

	return r < 0 ? 0 : r;
}

int kvm_require_caps(int fd, const struct kvm_cap_need *needs, int nr)
{
	for (int i = 0; i < nr; i++) {
		if (kvm_check_cap(fd, needs[i].cap) <= 0) {
			log_error("this host's KVM lacks %s, which skiff needs", needs[i].name);
			return -ENOTSUP;
		}
	}
	return 0;
}

static bool cpuinfo_has_hw_virt(void)
{
	FILE *f = fopen("/proc/cpuinfo", "re");
	char line[4096];
	bool found = false, any_flags = false;

	if (!f)
		return true; /* cannot tell: do not cry wolf */
	while (!found && fgets(line, sizeof(line), f)) {
		char *tok, *save;

		if (strncmp(line, "flags", 5) != 0)
			continue;
		any_flags = true;
		for (tok = strtok_r(line, " \t\n:", &save); tok; tok = strtok_r(NULL, " \t\n", &save))
			if (strcmp(tok, "vmx") == 0 || strcmp(tok, "svm") == 0)
				found = true;
	}
	fclose(f);
	return found || !any_flags;
}

bool kvm_host_is_software(char *module, int module_len)
{
	static const char *const modules[] = { "kvm_pvm", "kvm_intel", "kvm_amd" };

	if (module_len > 0)
		module[0] = '\0';
	for (unsigned i = 0; i < sizeof(modules) / sizeof(modules[0]); i++) {
		char path[64];

		snprintf(path, sizeof(path), "/sys/module/%s", modules[i]);
		if (access(path, F_OK) == 0) {
			if (module_len > 0)
				snprintf(module, (size_t)module_len, "%s", modules[i]);
			if (i == 0)
				return true;
			break;
		}
	}
	return !cpuinfo_has_hw_virt();
}
