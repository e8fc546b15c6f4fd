#include "arch/arm64/cpu_state.h"
#include "arch/arch.h"
#include "arch/arm64/layout.h"
#include "base/log.h"
#include "base/state.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>

#define VCPU_STATE_VERSION 1
#define VM_STATE_VERSION   1

/* A vCPU has a few hundred registers (KVM lists ~250 with a PMU); a section with more is
 * garbled. The largest register KVM has is an SVE Z register at 2048 bits. */
#define MAX_REGS     4096
#define MAX_REG_SIZE 256
/* The most vGIC registers a VM's section holds: the distributor's, and ~40 per vCPU. */
#define MAX_GIC_REGS (4096 + 64 * (int)ARM64_GIC_V3_MAX_CPUS)

#ifndef KVM_MP_STATE_SUSPENDED
#define KVM_MP_STATE_SUSPENDED 10
#endif

static int ioctl_failed(const char *what, int vcpu_id)
{
	int ret = -errno;

	if (vcpu_id >= 0)
		return log_set_error(ret, "vCPU %d: %s failed: %s", vcpu_id, what, strerror(errno));
	return log_set_error(ret, "%s failed: %s", what, strerror(errno));
}

static size_t reg_size(uint64_t id)
{
	return (size_t)1 << ((id & KVM_REG_SIZE_MASK) >> KVM_REG_SIZE_SHIFT);
}

/* The ids KVM has for this vCPU: the first call fails with E2BIG and says how many. */
static int reg_list(int vcpu_fd, int vcpu_id, struct kvm_reg_list **out)
{
	struct kvm_reg_list probe = {.n = 0}, *list;

	if (ioctl(vcpu_fd, KVM_GET_REG_LIST, &probe) < 0 && errno != E2BIG)
		return ioctl_failed("KVM_GET_REG_LIST", vcpu_id);
	if (probe.n == 0 || probe.n > MAX_REGS)
		return log_set_error(-EIO, "vCPU %d: KVM_GET_REG_LIST lists %llu registers",
				     vcpu_id, (unsigned long long)probe.n);
	list = calloc(1, sizeof(*list) + probe.n * sizeof(uint64_t));
	if (!list)
		return log_set_error(-ENOMEM, "out of memory for %llu register ids",
				     (unsigned long long)probe.n);
	list->n = probe.n;
	if (ioctl(vcpu_fd, KVM_GET_REG_LIST, list) < 0) {
		int ret = ioctl_failed("KVM_GET_REG_LIST", vcpu_id);

		free(list);
		return ret;
	}
	for (uint64_t i = 0; i < list->n; i++) {
		if (reg_size(list->reg[i]) > MAX_REG_SIZE) {
			int ret =
			    log_set_error(-EIO, "vCPU %d: register 0x%llx has %zu bytes", vcpu_id,
					  (unsigned long long)list->reg[i], reg_size(list->reg[i]));

			free(list);
			return ret;
		}
	}
	*out = list;
	return 0;
}

static bool has_vcpu_events(int vm_fd)
{
	return ioctl(vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_VCPU_EVENTS) > 0;
}

int arm64_vcpu_state_save(int vm_fd, int vcpu_fd, int vcpu_id, struct state_writer *w)
{
	struct kvm_reg_list *list = NULL;
	struct kvm_mp_state mp;
	struct kvm_vcpu_events events;
	bool events_ok = has_vcpu_events(vm_fd);
	uint8_t *values;
	size_t at = 0, total = 0;
	int ret;

	memset(&events, 0, sizeof(events));
	if (ioctl(vcpu_fd, KVM_GET_MP_STATE, &mp) < 0)
		return ioctl_failed("KVM_GET_MP_STATE", vcpu_id);
	if (events_ok && ioctl(vcpu_fd, KVM_GET_VCPU_EVENTS, &events) < 0)
		return ioctl_failed("KVM_GET_VCPU_EVENTS", vcpu_id);
	ret = reg_list(vcpu_fd, vcpu_id, &list);
	if (ret)
		return ret;
	for (uint64_t i = 0; i < list->n; i++)
		total += reg_size(list->reg[i]);
	values = calloc(1, total);
	if (!values) {
		free(list);
		return log_set_error(-ENOMEM, "out of memory for vCPU %d's registers", vcpu_id);
	}
	for (uint64_t i = 0; i < list->n; i++) {
		struct kvm_one_reg reg = {.id = list->reg[i],
					  .addr = (uint64_t)(uintptr_t)(values + at)};

		if (ioctl(vcpu_fd, KVM_GET_ONE_REG, &reg) < 0) {
			ret = -errno;
			log_set_error(ret, "vCPU %d: KVM_GET_ONE_REG 0x%llx failed: %s", vcpu_id,
				      (unsigned long long)list->reg[i], strerror(errno));
			free(values);
			free(list);
			return ret;
		}
		at += reg_size(list->reg[i]);
	}

	state_begin(w, ARCH_STATE_VCPU, VCPU_STATE_VERSION);
	state_put_u32(w, (uint32_t)vcpu_id);
	state_put_u32(w, (uint32_t)list->n);
	at = 0;
	for (uint64_t i = 0; i < list->n; i++) {
		state_put_u64(w, list->reg[i]);
		state_put_bytes(w, values + at, reg_size(list->reg[i]));
		at += reg_size(list->reg[i]);
	}
	state_put_u32(w, mp.mp_state);
	state_put_bool(w, events_ok);
	if (events_ok) {
		state_put_u32(w, sizeof(events));
		state_put_bytes(w, &events, sizeof(events));
	}
	state_end(w);
	free(values);
	free(list);
	if (state_writer_status(w))
		return log_set_error(state_writer_status(w), "out of memory saving vCPU %d",
				     vcpu_id);
	return 0;
}

static bool listed(const struct kvm_reg_list *list, uint64_t id)
{
	for (uint64_t i = 0; i < list->n; i++)
		if (list->reg[i] == id)
			return true;
	return false;
}

/* Everything a vCPU's section holds, read and checked whole before anything goes to KVM. */
struct vcpu_section {
	uint32_t nregs;
	uint64_t *ids;
	uint8_t *values; /* one after the other, each reg_size(id) bytes */
	uint32_t mp_state;
	bool has_events;
	struct kvm_vcpu_events events;
};

static void vcpu_section_free(struct vcpu_section *s)
{
	free(s->ids);
	free(s->values);
}

static int read_vcpu_section(int vm_fd, int vcpu_fd, int vcpu_id, struct state_reader *r,
			     struct vcpu_section *s)
{
	struct kvm_reg_list *have = NULL;
	uint16_t version;
	uint32_t id = 0;
	size_t at = 0;
	int ret;

	memset(s, 0, sizeof(*s));
	ret = reg_list(vcpu_fd, vcpu_id, &have);
	if (ret)
		return ret;
	if (state_open(r, ARCH_STATE_VCPU, VCPU_STATE_VERSION, &version))
		goto out;
	state_get_u32(r, &id);
	if (!state_reader_status(r) && id != (uint32_t)vcpu_id)
		state_refuse(r, "the section is vCPU %u's where vCPU %d's was expected", id,
			     vcpu_id);
	state_get_u32(r, &s->nregs);
	if (!state_reader_status(r) && s->nregs != have->n)
		state_refuse(r,
			     "%u registers saved, this host's KVM has %llu for the vCPU "
			     "(another kernel or CPU?)",
			     s->nregs, (unsigned long long)have->n);
	if (!state_reader_status(r) && (!(s->ids = calloc(s->nregs, sizeof(*s->ids))) ||
					!(s->values = calloc(s->nregs, MAX_REG_SIZE))))
		state_refuse(r, "out of memory for %u registers", s->nregs);
	for (uint32_t i = 0; !state_reader_status(r) && i < s->nregs; i++) {
		state_get_u64(r, &s->ids[i]);
		if (state_reader_status(r))
			break;
		if ((s->ids[i] & KVM_REG_ARCH_MASK) != KVM_REG_ARM64 ||
		    reg_size(s->ids[i]) > MAX_REG_SIZE) {
			state_refuse(r, "0x%llx is no arm64 register id",
				     (unsigned long long)s->ids[i]);
			break;
		}
		if (!listed(have, s->ids[i])) {
			state_refuse(r,
				     "register 0x%llx is not one this host's KVM has for the vCPU",
				     (unsigned long long)s->ids[i]);
			break;
		}
		for (uint32_t j = 0; j < i; j++)
			if (s->ids[j] == s->ids[i])
				state_refuse(r, "register 0x%llx saved twice",
					     (unsigned long long)s->ids[i]);
		state_get_bytes(r, s->values + at, reg_size(s->ids[i]));
		at += reg_size(s->ids[i]);
	}
	state_get_u32(r, &s->mp_state);
	if (!state_reader_status(r) && s->mp_state != KVM_MP_STATE_RUNNABLE &&
	    s->mp_state != KVM_MP_STATE_STOPPED && s->mp_state != KVM_MP_STATE_SUSPENDED)
		state_refuse(r, "MP state %u is not one an arm64 vCPU has", s->mp_state);
	state_get_bool(r, &s->has_events);
	if (!state_reader_status(r) && s->has_events) {
		uint32_t len = 0;

		if (!has_vcpu_events(vm_fd))
			state_refuse(r, "vCPU events saved, and this host's KVM has none");
		state_get_u32(r, &len);
		if (!state_reader_status(r) && len != sizeof(s->events))
			state_refuse(r, "vCPU events of %u bytes where this build keeps %zu", len,
				     sizeof(s->events));
		state_get_bytes(r, &s->events, sizeof(s->events));
	}
	state_close(r);
out:
	free(have);
	if (state_reader_status(r)) {
		vcpu_section_free(s);
		return log_set_error(state_reader_status(r), "vCPU %d's state: %s", vcpu_id,
				     state_reader_error(r));
	}
	return 0;
}

static int set_one(int vcpu_fd, int vcpu_id, uint64_t id, void *value)
{
	struct kvm_one_reg reg = {.id = id, .addr = (uint64_t)(uintptr_t)value};

	if (ioctl(vcpu_fd, KVM_SET_ONE_REG, &reg) < 0) {
		int ret = -errno;

		return log_set_error(ret, "vCPU %d: KVM refused register 0x%llx: %s", vcpu_id,
				     (unsigned long long)id, strerror(errno));
	}
	return 0;
}

int arm64_vcpu_state_restore(int vm_fd, int vcpu_fd, int vcpu_id, uint64_t counter_delta,
			     struct state_reader *r)
{
	struct vcpu_section s;
	struct kvm_mp_state mp;
	uint8_t *counter = NULL;
	size_t at = 0;
	int ret;

	ret = read_vcpu_section(vm_fd, vcpu_fd, vcpu_id, r, &s);
	if (ret)
		return ret;
	/* The virtual counter last: KVM takes its write as the counter offset, measured from now,
	 * so the guest's time goes on from the saved value when the vCPU next runs. */
	for (uint32_t i = 0; !ret && i < s.nregs; i++) {
		if (s.ids[i] == KVM_REG_ARM_TIMER_CNT)
			counter = s.values + at;
		else
			ret = set_one(vcpu_fd, vcpu_id, s.ids[i], s.values + at);
		at += reg_size(s.ids[i]);
	}
	if (!ret && counter) {
		uint64_t cnt;

		memcpy(&cnt, counter, sizeof(cnt));
		cnt += counter_delta;
		ret = set_one(vcpu_fd, vcpu_id, KVM_REG_ARM_TIMER_CNT, &cnt);
	}
	mp.mp_state = s.mp_state;
	if (!ret && ioctl(vcpu_fd, KVM_SET_MP_STATE, &mp) < 0)
		ret = ioctl_failed("KVM_SET_MP_STATE", vcpu_id);
	if (!ret && s.has_events && ioctl(vcpu_fd, KVM_SET_VCPU_EVENTS, &s.events) < 0)
		ret = ioctl_failed("KVM_SET_VCPU_EVENTS", vcpu_id);
	vcpu_section_free(&s);
	return ret;
}

/* --- the vGICv3 and its ITS --- */

uint32_t arm64_gic_attr_affinity(uint64_t mpidr)
{
	return (uint32_t)(((mpidr >> 32) & 0xff) << 24 | (mpidr & 0xffffff));
}

/* One register of the vGIC as KVM_{GET,SET}_DEVICE_ATTR reaches it. */
struct gic_reg {
	uint32_t group;
	uint64_t attr;
	bool its; /* on the ITS's fd rather than the GIC's */
};

struct gic_regs {
	struct gic_reg *r;
	int n, cap;
};

static void add(struct gic_regs *l, uint32_t group, uint64_t attr, bool its)
{
	if (l->n == l->cap) {
		int cap = l->cap ? 2 * l->cap : 256;
		struct gic_reg *r = cap <= MAX_GIC_REGS ? realloc(l->r, cap * sizeof(*r)) : NULL;

		if (!r) {
			l->cap = -1; /* failed: stays full */
			return;
		}
		l->r = r;
		l->cap = cap;
	}
	if (l->cap > 0)
		l->r[l->n++] = (struct gic_reg){.group = group, .attr = attr, .its = its};
}

/* Distributor offsets (GICv3 architecture specification, 12.9). */
#define GICD_CTLR	0x0000
#define GICD_IIDR	0x0008
#define GICD_IGROUPR	0x0080
#define GICD_ISENABLER	0x0100
#define GICD_ISPENDR	0x0200
#define GICD_ISACTIVER	0x0300
#define GICD_IPRIORITYR 0x0400
#define GICD_ICFGR	0x0c00
#define GICD_IROUTER	0x6000
/* Redistributor offsets from RD_base; the SGI frame is the second 64 KiB (12.10, 12.11). */
#define GICR_CTLR      0x0000
#define GICR_PROPBASER 0x0070
#define GICR_PENDBASER 0x0078
#define GICR_SGI       0x10000
/* ITS control registers (12.19); KVM reads and writes them 64 bits at a time. */
#define GITS_CTLR    0x0000
#define GITS_IIDR    0x0004
#define GITS_CBASER  0x0080
#define GITS_CWRITER 0x0088
#define GITS_CREADR  0x0090
#define GITS_BASER   0x0100 /* KVM has two: the device and collection tables */

/* The CPU interface's system registers as the vGIC attribute encodes them (op0, op1, CRn, CRm,
 * op2, like KVM's sysreg ids without the arch and size bits). */
#define ICC(op1, crn, crm, op2)                                                                    \
	((uint64_t)(3u << 14 | (op1) << 11 | (crn) << 7 | (crm) << 3 | (op2)))
#define ICC_PMR_EL1	ICC(0, 4, 6, 0)
#define ICC_BPR0_EL1	ICC(0, 12, 8, 3)
#define ICC_AP0R_EL1(n) ICC(0, 12, 8, 4 + (n))
#define ICC_AP1R_EL1(n) ICC(0, 12, 9, (n))
#define ICC_BPR1_EL1	ICC(0, 12, 12, 3)
#define ICC_CTLR_EL1	ICC(0, 12, 12, 4)
#define ICC_SRE_EL1	ICC(0, 12, 12, 5)
#define ICC_IGRPEN0_EL1 ICC(0, 12, 12, 6)
#define ICC_IGRPEN1_EL1 ICC(0, 12, 12, 7)

static uint64_t on_cpu(uint64_t mpidr, uint64_t offset)
{
	return (uint64_t)arm64_gic_attr_affinity(mpidr) << KVM_DEV_ARM_VGIC_V3_MPIDR_SHIFT | offset;
}

static int gic_access(int fd, const struct gic_reg *reg, uint64_t *value, bool write)
{
	uint32_t v32 = (uint32_t)*value;
	bool wide = reg->its || reg->group == KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS;
	struct kvm_device_attr a = {.group = reg->group,
				    .attr = reg->attr,
				    .addr = wide ? (uint64_t)(uintptr_t)value
						 : (uint64_t)(uintptr_t)&v32};

	if (ioctl(fd, write ? KVM_SET_DEVICE_ATTR : KVM_GET_DEVICE_ATTR, &a) < 0)
		return -errno;
	if (!write && !wide)
		*value = v32;
	return 0;
}

/* How many ICC_AP{0,1}R<n>_EL1 the vCPU's interface has: one per 32 of the preemption levels
 * its priority bits give (ICC_CTLR_EL1.PRIbits + 1: 5 bits 1, 6 bits 2, 7 bits 4). */
static int nr_aprs(int gic_fd, uint64_t mpidr)
{
	struct gic_reg ctlr = {.group = KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS,
			       .attr = on_cpu(mpidr, ICC_CTLR_EL1)};
	uint64_t v = 0;
	int bits, ret = gic_access(gic_fd, &ctlr, &v, false);

	if (ret)
		return ret;
	bits = (int)((v >> 8) & 7) + 1;
	return bits >= 7 ? 4 : bits == 6 ? 2 : 1;
}

/* Every register the VM's GIC state is made of, in the order a restore writes them: the
 * distributor's configuration before its enables and pending bits; each redistributor's LPI
 * tables before its GICR_CTLR (EnableLPIs locks them); the CPU interfaces with ICC_SRE_EL1
 * first; the SPIs' line levels after their trigger configuration; the ITS last, GITS_CBASER
 * first (it resets the command queue's pointers) and GITS_CTLR after its tables. */
static int gic_register_list(const struct arm64_gic *gic, const uint64_t *mpidr, int nr_vcpus,
			     struct gic_regs *l)
{
	const uint32_t D = KVM_DEV_ARM_VGIC_GRP_DIST_REGS, R = KVM_DEV_ARM_VGIC_GRP_REDIST_REGS,
		       C = KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS, L = KVM_DEV_ARM_VGIC_GRP_LEVEL_INFO,
		       I = KVM_DEV_ARM_VGIC_GRP_ITS_REGS;
	const int nirqs = ARM64_GIC_NR_IRQS;

	memset(l, 0, sizeof(*l));
	add(l, D, GICD_IIDR, false);
	add(l, D, GICD_CTLR, false);
	/* The private interrupts' distributor registers are the redistributors' (ARE is on). */
	for (int i = 1; i < nirqs / 32; i++)
		add(l, D, GICD_IGROUPR + 4 * i, false);
	for (int i = 8; i < nirqs / 4; i++)
		add(l, D, GICD_IPRIORITYR + 4 * i, false);
	for (int i = 2; i < nirqs / 16; i++)
		add(l, D, GICD_ICFGR + 4 * i, false);
	for (int n = 32; n < nirqs; n++) {
		add(l, D, GICD_IROUTER + 8 * n, false);
		add(l, D, GICD_IROUTER + 8 * n + 4, false);
	}
	for (int i = 1; i < nirqs / 32; i++) {
		add(l, D, GICD_ISENABLER + 4 * i, false);
		add(l, D, GICD_ISPENDR + 4 * i, false);
		add(l, D, GICD_ISACTIVER + 4 * i, false);
	}
	for (int v = 0; v < nr_vcpus; v++) {
		uint64_t m = mpidr[v];
		int aprs = nr_aprs(gic->fd, m);

		if (aprs < 0) {
			free(l->r);
			return log_set_error(aprs,
					     "vCPU %d: cannot read ICC_CTLR_EL1 from the "
					     "vGIC: %s",
					     v, strerror(-aprs));
		}
		add(l, R, on_cpu(m, GICR_PROPBASER), false);
		add(l, R, on_cpu(m, GICR_PROPBASER + 4), false);
		add(l, R, on_cpu(m, GICR_PENDBASER), false);
		add(l, R, on_cpu(m, GICR_PENDBASER + 4), false);
		add(l, R, on_cpu(m, GICR_CTLR), false);
		add(l, R, on_cpu(m, GICR_SGI + GICD_IGROUPR), false);
		for (int i = 0; i < 8; i++)
			add(l, R, on_cpu(m, GICR_SGI + GICD_IPRIORITYR + 4 * i), false);
		add(l, R, on_cpu(m, GICR_SGI + GICD_ICFGR + 4), false); /* PPIs; SGIs are fixed */
		add(l, R, on_cpu(m, GICR_SGI + GICD_ISENABLER), false);
		add(l, R, on_cpu(m, GICR_SGI + GICD_ISPENDR), false);
		add(l, R, on_cpu(m, GICR_SGI + GICD_ISACTIVER), false);
		add(l, C, on_cpu(m, ICC_SRE_EL1), false);
		add(l, C, on_cpu(m, ICC_CTLR_EL1), false);
		add(l, C, on_cpu(m, ICC_IGRPEN0_EL1), false);
		add(l, C, on_cpu(m, ICC_IGRPEN1_EL1), false);
		add(l, C, on_cpu(m, ICC_PMR_EL1), false);
		add(l, C, on_cpu(m, ICC_BPR0_EL1), false);
		add(l, C, on_cpu(m, ICC_BPR1_EL1), false);
		for (int n = 0; n < aprs; n++) {
			add(l, C, on_cpu(m, ICC_AP0R_EL1(n)), false);
			add(l, C, on_cpu(m, ICC_AP1R_EL1(n)), false);
		}
	}
	/* The SPIs' levels, 32 at a time (the vCPU named is any: SPIs are shared). */
	for (int intid = 32; intid < nirqs; intid += 32)
		add(l, L,
		    on_cpu(mpidr[0], (uint64_t)VGIC_LEVEL_INFO_LINE_LEVEL
					     << KVM_DEV_ARM_VGIC_LINE_LEVEL_INFO_SHIFT |
					 (uint64_t)intid),
		    false);
	if (gic->its_fd >= 0) {
		add(l, I, GITS_CBASER, true);
		add(l, I, GITS_IIDR, true);
		add(l, I, GITS_CREADR, true);
		add(l, I, GITS_CWRITER, true);
		add(l, I, GITS_BASER, true);
		add(l, I, GITS_BASER + 8, true);
		add(l, I, GITS_CTLR, true); /* after KVM_DEV_ARM_ITS_RESTORE_TABLES */
	}
	if (l->cap < 0) {
		free(l->r);
		return log_set_error(-ENOMEM, "out of memory for the vGIC's register list");
	}
	return 0;
}

static const char *group_name(const struct gic_reg *reg)
{
	switch (reg->group) {
	case KVM_DEV_ARM_VGIC_GRP_DIST_REGS:
		return "distributor register";
	case KVM_DEV_ARM_VGIC_GRP_REDIST_REGS:
		return "redistributor register";
	case KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS:
		return "CPU interface register";
	case KVM_DEV_ARM_VGIC_GRP_LEVEL_INFO:
		return "line levels";
	default:
		return "ITS register";
	}
}

static int gic_ctrl(int fd, uint64_t attr, const char *what)
{
	struct kvm_device_attr a = {.group = KVM_DEV_ARM_VGIC_GRP_CTRL, .attr = attr};

	if (ioctl(fd, KVM_SET_DEVICE_ATTR, &a) < 0)
		return log_set_error(-errno, "%s failed: %s", what, strerror(errno));
	return 0;
}

static uint64_t host_realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* The generic timer's frequency, which the guest's counter runs at too. */
static uint64_t counter_frequency(void)
{
	uint64_t f = 0;

#if defined(__aarch64__)
	__asm__ volatile("mrs %0, cntfrq_el0" : "=r"(f));
#endif
	return f;
}

int arm64_vm_state_save(const struct arm64_gic *gic, const uint64_t *mpidr, int nr_vcpus,
			struct state_writer *w)
{
	struct gic_regs l = {0};
	uint64_t *values = NULL;
	int ret;

	if (gic && gic->version != ARM64_GICV3)
		return log_set_error(-ENOTSUP, "snapshots of an arm64 VM with a GICv2 are not "
					       "supported (--irqchip gicv3 is)");
	if (gic) {
		/* arm-vgic-its.rst: the LPIs' pending bits and the ITS's tables go into guest
		 * RAM first, where the memory file takes them. */
		if (gic->its_fd >= 0 &&
		    ((ret = gic_ctrl(gic->fd, KVM_DEV_ARM_VGIC_SAVE_PENDING_TABLES,
				     "saving the vGIC's LPI pending tables")) ||
		     (ret = gic_ctrl(gic->its_fd, KVM_DEV_ARM_ITS_SAVE_TABLES,
				     "saving the ITS tables"))))
			return ret;
		ret = gic_register_list(gic, mpidr, nr_vcpus, &l);
		if (ret)
			return ret;
		values = calloc((size_t)l.n, sizeof(*values));
		if (!values) {
			free(l.r);
			return log_set_error(-ENOMEM, "out of memory for the vGIC's registers");
		}
		for (int i = 0; i < l.n; i++) {
			ret = gic_access(l.r[i].its ? gic->its_fd : gic->fd, &l.r[i], &values[i],
					 false);
			if (ret) {
				log_set_error(ret, "reading the vGIC's %s 0x%llx failed: %s",
					      group_name(&l.r[i]), (unsigned long long)l.r[i].attr,
					      strerror(-ret));
				free(values);
				free(l.r);
				return ret;
			}
		}
	}
	state_begin(w, ARCH_STATE_VM, VM_STATE_VERSION);
	state_put_u64(w, host_realtime_ns());
	state_put_u64(w, counter_frequency());
	state_put_bool(w, gic != NULL);
	if (gic) {
		state_put_u32(w, ARM64_GIC_NR_IRQS);
		state_put_u32(w, (uint32_t)nr_vcpus);
		state_put_bool(w, gic->its_fd >= 0);
		state_put_u32(w, (uint32_t)l.n);
		for (int i = 0; i < l.n; i++) {
			state_put_u32(w, l.r[i].group);
			state_put_u64(w, l.r[i].attr);
			state_put_u64(w, values[i]);
		}
	}
	state_end(w);
	free(values);
	free(l.r);
	if (state_writer_status(w))
		return log_set_error(state_writer_status(w), "out of memory saving the VM's state");
	return 0;
}

int arm64_vm_state_restore(const struct arm64_gic *gic, const uint64_t *mpidr, int nr_vcpus,
			   bool clock_realtime, uint64_t *counter_delta, struct state_reader *r)
{
	struct gic_regs l = {0};
	uint64_t *values = NULL, saved_realtime = 0, saved_freq = 0;
	uint32_t nirqs = 0, vcpus = 0, n = 0;
	bool had_gic = false, had_its = false;
	uint16_t version;
	int ret = 0;

	*counter_delta = 0;
	if (gic && gic->version != ARM64_GICV3)
		return log_set_error(-ENOTSUP, "snapshots of an arm64 VM with a GICv2 are not "
					       "supported (--irqchip gicv3 is)");
	if (gic && (ret = gic_register_list(gic, mpidr, nr_vcpus, &l)))
		return ret;
	if (state_open(r, ARCH_STATE_VM, VM_STATE_VERSION, &version) == 0) {
		state_get_u64(r, &saved_realtime);
		state_get_u64(r, &saved_freq);
		state_get_bool(r, &had_gic);
		if (!state_reader_status(r) && had_gic != (gic != NULL))
			state_refuse(r, "saved %s an in-kernel vGIC, this VM has %s",
				     had_gic ? "with" : "without", gic ? "one" : "none");
		if (had_gic) {
			state_get_u32(r, &nirqs);
			state_get_u32(r, &vcpus);
			state_get_bool(r, &had_its);
			state_get_u32(r, &n);
		}
		if (!state_reader_status(r) && had_gic &&
		    (nirqs != ARM64_GIC_NR_IRQS || vcpus != (uint32_t)nr_vcpus ||
		     had_its != (gic->its_fd >= 0)))
			state_refuse(r,
				     "a vGIC of %u interrupts, %u vCPUs and %s ITS, where this VM "
				     "has %d, %d and %s",
				     nirqs, vcpus, had_its ? "an" : "no", ARM64_GIC_NR_IRQS,
				     nr_vcpus, gic->its_fd >= 0 ? "an ITS" : "none");
		if (!state_reader_status(r) && had_gic && n != (uint32_t)l.n)
			state_refuse(r,
				     "%u vGIC registers saved, this VM's vGIC has %d (another "
				     "host's GIC?)",
				     n, l.n);
		if (!state_reader_status(r) && had_gic && !(values = calloc(n, sizeof(*values))))
			state_refuse(r, "out of memory for %u vGIC registers", n);
		for (uint32_t i = 0; values && !state_reader_status(r) && i < n; i++) {
			uint32_t group = 0;
			uint64_t attr = 0;

			state_get_u32(r, &group);
			state_get_u64(r, &attr);
			state_get_u64(r, &values[i]);
			if (!state_reader_status(r) &&
			    (group != l.r[i].group || attr != l.r[i].attr))
				state_refuse(r,
					     "vGIC register %u is group %u attribute 0x%llx where "
					     "group %u attribute 0x%llx was expected",
					     i, group, (unsigned long long)attr, l.r[i].group,
					     (unsigned long long)l.r[i].attr);
		}
		state_close(r);
	}
	if (state_reader_status(r)) {
		free(values);
		free(l.r);
		return log_set_error(state_reader_status(r), "the VM's state: %s",
				     state_reader_error(r));
	}

	for (int i = 0; had_gic && i < l.n; i++) {
		if (l.r[i].its && l.r[i].attr == GITS_CTLR &&
		    (ret = gic_ctrl(gic->its_fd, KVM_DEV_ARM_ITS_RESTORE_TABLES,
				    "restoring the ITS tables")))
			break;
		ret = gic_access(l.r[i].its ? gic->its_fd : gic->fd, &l.r[i], &values[i], true);
		if (ret) {
			log_set_error(ret, "KVM refused the vGIC's %s 0x%llx = 0x%llx: %s",
				      group_name(&l.r[i]), (unsigned long long)l.r[i].attr,
				      (unsigned long long)values[i], strerror(-ret));
			break;
		}
	}
	free(values);
	free(l.r);
	if (ret)
		return ret;
	/* The counter moves on by the host's real time since the save, so the guest's wall
	 * clock (its boot time plus the counter) is right again. */
	if (clock_realtime) {
		uint64_t now = host_realtime_ns(), freq = counter_frequency();

		if (freq && freq != saved_freq)
			log_warn("the counter ran at %llu Hz at the save and at %llu Hz here: the "
				 "guest's time is off",
				 (unsigned long long)saved_freq, (unsigned long long)freq);
		if (now > saved_realtime && freq)
			*counter_delta = (uint64_t)((unsigned __int128)(now - saved_realtime) *
						    freq / 1000000000ULL);
	}
	return 0;
}
