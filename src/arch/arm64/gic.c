#include "arch/arm64/gic.h"
#include "arch/arm64/layout.h"
#include "base/log.h"

#include <errno.h>
#include <linux/kvm.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

static int device_set_attr(int fd, const char *dev, uint32_t group, uint64_t attr, void *val,
			   const char *what)
{
	struct kvm_device_attr a = {.group = group, .attr = attr, .addr = (uint64_t)(uintptr_t)val};

	if (ioctl(fd, KVM_SET_DEVICE_ATTR, &a) < 0) {
		int err = errno;

		log_error("%s: %s failed: %s", dev, what, strerror(err));
		return -err;
	}
	return 0;
}

static int set_attr(struct arm64_gic *gic, uint32_t group, uint64_t attr, void *val,
		    const char *what)
{
	return device_set_attr(gic->fd, gic->version == ARM64_GICV3 ? "GICv3" : "GICv2", group,
			       attr, val, what);
}

static bool host_can_emulate(int vm_fd, uint32_t type)
{
	struct kvm_create_device dev = {.type = type, .flags = KVM_CREATE_DEVICE_TEST};

	return ioctl(vm_fd, KVM_CREATE_DEVICE, &dev) == 0;
}

int arm64_gic_create(int vm_fd, enum irqchip_kind want, int nr_cpus, struct arm64_gic *gic)
{
	struct kvm_create_device dev = {0};
	uint64_t dist = ARM64_GIC_DIST_BASE, other;
	int ret;

	gic->fd = -1;
	gic->its_fd = -1;
	if (want == IRQCHIP_AUTO)
		want = host_can_emulate(vm_fd, KVM_DEV_TYPE_ARM_VGIC_V3) ? IRQCHIP_GICV3
									 : IRQCHIP_GICV2;
	gic->version = want == IRQCHIP_GICV3 ? ARM64_GICV3 : ARM64_GICV2;
	if (want == IRQCHIP_GICV2 && nr_cpus > ARM64_GIC_V2_MAX_CPUS) {
		log_error("a GICv2 serves at most %d vCPUs, not %d: use --irqchip gicv3",
			  ARM64_GIC_V2_MAX_CPUS, nr_cpus);
		return -EINVAL;
	}
	if (want == IRQCHIP_GICV3 && (uint64_t)nr_cpus > ARM64_GIC_V3_MAX_CPUS) {
		log_error("skiff's GICv3 redistributor window holds %llu vCPUs, not %d",
			  (unsigned long long)ARM64_GIC_V3_MAX_CPUS, nr_cpus);
		return -EINVAL;
	}
	dev.type = want == IRQCHIP_GICV3 ? KVM_DEV_TYPE_ARM_VGIC_V3 : KVM_DEV_TYPE_ARM_VGIC_V2;
	if (ioctl(vm_fd, KVM_CREATE_DEVICE, &dev) < 0) {
		int err = errno;

		log_error("cannot create a GICv%d in KVM: %s%s", gic->version, strerror(err),
			  err == ENODEV
			      ? (want == IRQCHIP_GICV2 ? " (this host's KVM cannot emulate "
							 "a GICv2: try --irqchip gicv3)"
						       : " (try --irqchip gicv2)")
			      : "");
		return -err;
	}
	gic->fd = (int)dev.fd;
	if (want == IRQCHIP_GICV3) {
		other = ARM64_GIC_REDIST_BASE;
		ret = set_attr(gic, KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V3_ADDR_TYPE_DIST, &dist,
			       "distributor address");
		if (!ret)
			ret = set_attr(gic, KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V3_ADDR_TYPE_REDIST,
				       &other, "redistributor address");
	} else {
		other = ARM64_GIC_CPU_BASE;
		ret = set_attr(gic, KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V2_ADDR_TYPE_DIST, &dist,
			       "distributor address");
		if (!ret)
			ret = set_attr(gic, KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V2_ADDR_TYPE_CPU,
				       &other, "CPU interface address");
	}
	if (ret) {
		arm64_gic_destroy(gic);
		return ret;
	}
	return 0;
}

int arm64_gic_add_its(int vm_fd, struct arm64_gic *gic)
{
	struct kvm_create_device dev = {.type = KVM_DEV_TYPE_ARM_VGIC_ITS};
	uint64_t base = ARM64_GIC_ITS_BASE;
	int ret;

	if (gic->version != ARM64_GICV3) {
		log_error("an ITS (for PCI MSIs) needs a GICv3, this VM has a GICv%d",
			  gic->version);
		return -ENODEV;
	}
	if (ioctl(vm_fd, KVM_CREATE_DEVICE, &dev) < 0) {
		int err = errno;

		log_error("cannot create a GICv3 ITS in KVM: %s", strerror(err));
		return -err;
	}
	gic->its_fd = (int)dev.fd;
	ret = device_set_attr(gic->its_fd, "GICv3 ITS", KVM_DEV_ARM_VGIC_GRP_ADDR,
			      KVM_VGIC_ITS_ADDR_TYPE, &base, "setting its address");
	if (ret) {
		close(gic->its_fd);
		gic->its_fd = -1;
	}
	return ret;
}

int arm64_gic_finalize(struct arm64_gic *gic)
{
	uint32_t nr_irqs = ARM64_GIC_NR_IRQS;
	int ret;

	ret =
	    set_attr(gic, KVM_DEV_ARM_VGIC_GRP_NR_IRQS, 0, &nr_irqs, "setting the interrupt count");
	if (!ret)
		ret = set_attr(gic, KVM_DEV_ARM_VGIC_GRP_CTRL, KVM_DEV_ARM_VGIC_CTRL_INIT, NULL,
			       "initialization");
	if (!ret && gic->its_fd >= 0)
		ret = device_set_attr(gic->its_fd, "GICv3 ITS", KVM_DEV_ARM_VGIC_GRP_CTRL,
				      KVM_DEV_ARM_VGIC_CTRL_INIT, NULL, "initialization");
	return ret;
}

void arm64_gic_destroy(struct arm64_gic *gic)
{
	if (gic->its_fd >= 0)
		close(gic->its_fd);
	if (gic->fd >= 0)
		close(gic->fd);
	gic->its_fd = -1;
	gic->fd = -1;
}
