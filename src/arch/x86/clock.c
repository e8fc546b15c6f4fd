#include "arch/x86/clock.h"
#include "base/log.h"
#include "vmm/vcpu.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#define MSR_IA32_TSC 0x10

int x86_clock_init(struct x86_clock_state *s, int nr_vcpus)
{
	memset(s, 0, sizeof(*s));
	s->tsc = calloc(nr_vcpus > 0 ? (size_t)nr_vcpus : 1, sizeof(*s->tsc));
	if (!s->tsc)
		return -ENOMEM;
	s->nr_vcpus = nr_vcpus;
	return 0;
}

void x86_clock_destroy(struct x86_clock_state *s)
{
	free(s->tsc);
	s->tsc = NULL;
	s->nr_vcpus = 0;
}

static int tsc_msr(struct vcpu *vcpu, unsigned long req, uint64_t *value)
{
	struct {
		struct kvm_msrs header;
		struct kvm_msr_entry entry;
	} msrs = {.header.nmsrs = 1, .entry.index = MSR_IA32_TSC, .entry.data = *value};

	/* Both ioctls return how many MSRs they handled. */
	if (ioctl(vcpu->fd, req, &msrs) != 1)
		return errno ? -errno : -EIO;
	*value = msrs.entry.data;
	return 0;
}

int x86_clock_save(struct x86_clock_state *s, int vm_fd, struct vcpu *vcpus, int nr_vcpus)
{
	int ret;

	if (nr_vcpus > s->nr_vcpus)
		return -EINVAL;
	for (int i = 0; i < nr_vcpus; i++) {
		s->tsc[i] = 0;
		errno = 0;
		ret = tsc_msr(&vcpus[i], KVM_GET_MSRS, &s->tsc[i]);
		if (ret) {
			log_warn("vCPU %d: cannot read its TSC at the pause: %s", i, strerror(-ret));
			return ret;
		}
	}
	memset(&s->kvmclock, 0, sizeof(s->kvmclock));
	if (ioctl(vm_fd, KVM_GET_CLOCK, &s->kvmclock) < 0) {
		ret = -errno;
		log_warn("KVM_GET_CLOCK at the pause failed: %s", strerror(errno));
		return ret;
	}
	return 0;
}

/* The vCPU's TSC offset (guest TSC = scaled host TSC + offset), KVM_VCPU_TSC_CTRL (Linux 5.16). */
static int tsc_offset(struct vcpu *vcpu, unsigned long req, uint64_t *offset)
{
	struct kvm_device_attr attr = {.group = KVM_VCPU_TSC_CTRL,
				       .attr = KVM_VCPU_TSC_OFFSET,
				       .addr = (uint64_t)(uintptr_t)offset};

	return ioctl(vcpu->fd, req, &attr) < 0 ? -errno : 0;
}

/* Moves every vCPU's TSC back by what vCPU 0's advanced since the pause, through their offsets:
 * the same amount for all keeps them as synchronized as they were. */
static int restore_tsc_offsets(const struct x86_clock_state *s, struct vcpu *vcpus, int nr_vcpus)
{
	uint64_t now = 0, delta, offset;
	int ret;

	errno = 0;
	ret = tsc_msr(&vcpus[0], KVM_GET_MSRS, &now);
	if (ret)
		return ret;
	delta = now - s->tsc[0];
	for (int i = 0; i < nr_vcpus; i++) {
		ret = tsc_offset(&vcpus[i], KVM_GET_DEVICE_ATTR, &offset);
		if (ret)
			return ret;
		offset -= delta;
		ret = tsc_offset(&vcpus[i], KVM_SET_DEVICE_ATTR, &offset);
		if (ret)
			return ret;
	}
	return 0;
}

/* Without the offset attribute: write the TSC values back. KVM takes a write close to what it
 * expects (within a second of its last TSC write's extrapolation) as a synchronization and keeps
 * its offset, so a short pause soon after the boot may still show in the TSC. */
static int restore_tsc_values(const struct x86_clock_state *s, struct vcpu *vcpus, int nr_vcpus)
{
	for (int i = 0; i < nr_vcpus; i++) {
		uint64_t tsc = s->tsc[i];
		int ret;

		errno = 0;
		ret = tsc_msr(&vcpus[i], KVM_SET_MSRS, &tsc);
		if (ret)
			return ret;
	}
	return 0;
}

int x86_clock_restore(const struct x86_clock_state *s, int vm_fd, struct vcpu *vcpus,
		      int nr_vcpus)
{
	/* Only the clock value: with KVM_CLOCK_REALTIME, KVM would add the paused time back. */
	struct kvm_clock_data clock = {.clock = s->kvmclock.clock};
	struct kvm_device_attr has_offset = {.group = KVM_VCPU_TSC_CTRL,
					     .attr = KVM_VCPU_TSC_OFFSET};
	int ret;

	if (nr_vcpus > s->nr_vcpus)
		return -EINVAL;
	/* The TSCs first: kvmclock is computed from them. */
	if (nr_vcpus > 0) {
		if (ioctl(vcpus[0].fd, KVM_HAS_DEVICE_ATTR, &has_offset) == 0)
			ret = restore_tsc_offsets(s, vcpus, nr_vcpus);
		else
			ret = restore_tsc_values(s, vcpus, nr_vcpus);
		if (ret) {
			log_warn("cannot restore the vCPUs' TSCs at the resume: %s", strerror(-ret));
			return ret;
		}
	}
	if (ioctl(vm_fd, KVM_SET_CLOCK, &clock) < 0) {
		ret = -errno;
		log_warn("KVM_SET_CLOCK at the resume failed: %s", strerror(errno));
		return ret;
	}
	return 0;
}
