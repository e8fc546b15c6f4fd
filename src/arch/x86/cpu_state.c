#include "arch/x86/cpu_state.h"
#include "arch/arch.h"
#include "base/log.h"
#include "base/state.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>

#define VCPU_STATE_VERSION 1
#define VM_STATE_VERSION   1

/* How the FPU state is kept: KVM_GET_XSAVE(2) where KVM has XSAVE, else KVM_GET_FPU. */
enum fpu_format { FPU_XSAVE = 1, FPU_LEGACY = 2 };

/* The most MSRs a vCPU's section may carry: KVM lists a few hundred at most. */
#define MAX_MSRS 4096

static int ioctl_failed(const char *what, int vcpu_id)
{
	int ret = -errno;

	if (vcpu_id >= 0)
		return log_set_error(ret, "vCPU %d: %s failed: %s", vcpu_id, what, strerror(errno));
	return log_set_error(ret, "%s failed: %s", what, strerror(errno));
}

/* A KVM structure: its length, then its bytes. */
static void put_blob(struct state_writer *w, const void *data, uint32_t len)
{
	state_put_u32(w, len);
	state_put_bytes(w, data, len);
}

static void get_blob(struct state_reader *r, const char *what, void *data, uint32_t len)
{
	uint32_t got = 0;

	if (state_get_u32(r, &got))
		return;
	if (got != len) {
		state_refuse(r, "%s: %u bytes where this build keeps %u", what, got, len);
		return;
	}
	state_get_bytes(r, data, len);
}

/* The size KVM_GET_XSAVE2 fills (KVM_CAP_XSAVE2, Linux 5.17), or that of struct kvm_xsave;
 * 0 when KVM has no XSAVE at all. */
static uint32_t xsave_size(int kvm_fd)
{
	int size = ioctl(kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE2);

	if (size > (int)sizeof(struct kvm_xsave))
		return (uint32_t)size;
	if (ioctl(kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE) > 0)
		return sizeof(struct kvm_xsave);
	return 0;
}

/* The MSR indices KVM saves and restores for a vCPU. */
static int msr_index_list(int kvm_fd, struct kvm_msr_list **out)
{
	struct kvm_msr_list probe = {.nmsrs = 0}, *list;

	/* The first call fails with E2BIG and tells how many there are. */
	ioctl(kvm_fd, KVM_GET_MSR_INDEX_LIST, &probe);
	if (probe.nmsrs == 0 || probe.nmsrs > MAX_MSRS)
		return log_set_error(-EIO, "KVM_GET_MSR_INDEX_LIST lists %u MSRs", probe.nmsrs);
	list = calloc(1, sizeof(*list) + probe.nmsrs * sizeof(uint32_t));
	if (!list)
		return log_set_error(-ENOMEM, "out of memory for %u MSR indices", probe.nmsrs);
	list->nmsrs = probe.nmsrs;
	if (ioctl(kvm_fd, KVM_GET_MSR_INDEX_LIST, list) < 0) {
		int ret = ioctl_failed("KVM_GET_MSR_INDEX_LIST", -1);

		free(list);
		return ret;
	}
	*out = list;
	return 0;
}

static struct kvm_msrs *msrs_alloc(uint32_t n)
{
	return calloc(1, sizeof(struct kvm_msrs) + (size_t)n * sizeof(struct kvm_msr_entry));
}

/* Reads every listed MSR that this vCPU has. KVM_GET_MSRS stops at the first MSR it cannot
 * read (one the vCPU's CPUID does not give it, say) and returns how many it read: that one is
 * dropped and the rest read again. */
static int read_msrs(int kvm_fd, int vcpu_fd, int vcpu_id, struct kvm_msrs **out)
{
	struct kvm_msr_list *list = NULL;
	struct kvm_msrs *msrs;
	uint32_t done = 0;
	int ret;

	ret = msr_index_list(kvm_fd, &list);
	if (ret)
		return ret;
	msrs = msrs_alloc(list->nmsrs);
	if (!msrs) {
		free(list);
		return log_set_error(-ENOMEM, "out of memory for MSRs");
	}
	for (uint32_t i = 0; i < list->nmsrs; i++)
		msrs->entries[i].index = list->indices[i];
	msrs->nmsrs = list->nmsrs;
	free(list);

	while (done < msrs->nmsrs) {
		struct kvm_msrs *rest = msrs_alloc(msrs->nmsrs - done);
		int got;

		if (!rest) {
			free(msrs);
			return log_set_error(-ENOMEM, "out of memory for MSRs");
		}
		rest->nmsrs = msrs->nmsrs - done;
		memcpy(rest->entries, &msrs->entries[done], rest->nmsrs * sizeof(rest->entries[0]));
		got = ioctl(vcpu_fd, KVM_GET_MSRS, rest);
		if (got < 0) {
			ret = ioctl_failed("KVM_GET_MSRS", vcpu_id);
			free(rest);
			free(msrs);
			return ret;
		}
		memcpy(&msrs->entries[done], rest->entries, (size_t)got * sizeof(rest->entries[0]));
		free(rest);
		done += (uint32_t)got;
		if (done < msrs->nmsrs) {
			/* entries[done] is one the vCPU does not have: drop it. */
			memmove(&msrs->entries[done], &msrs->entries[done + 1],
				(msrs->nmsrs - done - 1) * sizeof(msrs->entries[0]));
			msrs->nmsrs--;
		}
	}
	*out = msrs;
	return 0;
}

int x86_vcpu_state_save(int kvm_fd, int vcpu_fd, int vcpu_id, int has_lapic,
			struct state_writer *w)
{
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_xcrs xcrs;
	struct kvm_lapic_state lapic;
	struct kvm_vcpu_events events;
	struct kvm_mp_state mp;
	struct kvm_debugregs debugregs;
	struct kvm_msrs *msrs = NULL;
	uint32_t fpu_len = xsave_size(kvm_fd);
	bool has_xcrs = ioctl(kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XCRS) > 0;
	void *fpu;
	int ret;

	memset(&xcrs, 0, sizeof(xcrs));
	if (ioctl(vcpu_fd, KVM_GET_REGS, &regs) < 0)
		return ioctl_failed("KVM_GET_REGS", vcpu_id);
	if (ioctl(vcpu_fd, KVM_GET_SREGS, &sregs) < 0)
		return ioctl_failed("KVM_GET_SREGS", vcpu_id);
	if (has_xcrs && ioctl(vcpu_fd, KVM_GET_XCRS, &xcrs) < 0)
		return ioctl_failed("KVM_GET_XCRS", vcpu_id);
	memset(&lapic, 0, sizeof(lapic));
	if (has_lapic && ioctl(vcpu_fd, KVM_GET_LAPIC, &lapic) < 0)
		return ioctl_failed("KVM_GET_LAPIC", vcpu_id);
	if (ioctl(vcpu_fd, KVM_GET_VCPU_EVENTS, &events) < 0)
		return ioctl_failed("KVM_GET_VCPU_EVENTS", vcpu_id);
	if (ioctl(vcpu_fd, KVM_GET_MP_STATE, &mp) < 0)
		return ioctl_failed("KVM_GET_MP_STATE", vcpu_id);
	if (ioctl(vcpu_fd, KVM_GET_DEBUGREGS, &debugregs) < 0)
		return ioctl_failed("KVM_GET_DEBUGREGS", vcpu_id);

	fpu = calloc(1, fpu_len ? fpu_len : sizeof(struct kvm_fpu));
	if (!fpu)
		return log_set_error(-ENOMEM, "out of memory for vCPU %d's FPU state", vcpu_id);
	if (fpu_len > sizeof(struct kvm_xsave) ? ioctl(vcpu_fd, KVM_GET_XSAVE2, fpu) < 0
	    : fpu_len			       ? ioctl(vcpu_fd, KVM_GET_XSAVE, fpu) < 0
					       : ioctl(vcpu_fd, KVM_GET_FPU, fpu) < 0) {
		free(fpu);
		return ioctl_failed(fpu_len ? "KVM_GET_XSAVE" : "KVM_GET_FPU", vcpu_id);
	}
	ret = read_msrs(kvm_fd, vcpu_fd, vcpu_id, &msrs);
	if (ret) {
		free(fpu);
		return ret;
	}

	state_begin(w, ARCH_STATE_VCPU, VCPU_STATE_VERSION);
	state_put_u32(w, (uint32_t)vcpu_id);
	put_blob(w, &regs, sizeof(regs));
	put_blob(w, &sregs, sizeof(sregs));
	state_put_u8(w, fpu_len ? FPU_XSAVE : FPU_LEGACY);
	put_blob(w, fpu, fpu_len ? fpu_len : sizeof(struct kvm_fpu));
	state_put_bool(w, has_xcrs);
	put_blob(w, &xcrs, sizeof(xcrs));
	state_put_u32(w, msrs->nmsrs);
	for (uint32_t i = 0; i < msrs->nmsrs; i++) {
		state_put_u32(w, msrs->entries[i].index);
		state_put_u64(w, msrs->entries[i].data);
	}
	state_put_bool(w, has_lapic);
	if (has_lapic)
		put_blob(w, &lapic, sizeof(lapic));
	put_blob(w, &events, sizeof(events));
	state_put_u32(w, mp.mp_state);
	put_blob(w, &debugregs, sizeof(debugregs));
	state_end(w);
	free(fpu);
	free(msrs);
	if (state_writer_status(w))
		return log_set_error(state_writer_status(w), "out of memory saving vCPU %d", vcpu_id);
	return 0;
}

/* Everything a vCPU's section holds, read whole before anything is written to KVM. */
struct vcpu_section {
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	uint8_t fpu_format;
	void *fpu;
	uint32_t fpu_len;
	bool has_xcrs;
	struct kvm_xcrs xcrs;
	struct kvm_msrs *msrs;
	bool has_lapic;
	struct kvm_lapic_state lapic;
	struct kvm_vcpu_events events;
	struct kvm_mp_state mp;
	struct kvm_debugregs debugregs;
};

static void vcpu_section_free(struct vcpu_section *s)
{
	free(s->fpu);
	free(s->msrs);
}

static int read_vcpu_section(int kvm_fd, int vcpu_id, bool has_lapic, struct state_reader *r,
			     struct vcpu_section *s)
{
	uint16_t version;
	uint32_t id = 0, nmsrs = 0;
	uint32_t have_xsave = xsave_size(kvm_fd);

	memset(s, 0, sizeof(*s));
	if (state_open(r, ARCH_STATE_VCPU, VCPU_STATE_VERSION, &version))
		goto out;
	state_get_u32(r, &id);
	if (!state_reader_status(r) && id != (uint32_t)vcpu_id)
		state_refuse(r, "the section is vCPU %u's where vCPU %d's was expected", id,
			     vcpu_id);
	get_blob(r, "registers", &s->regs, sizeof(s->regs));
	get_blob(r, "segment registers", &s->sregs, sizeof(s->sregs));
	state_get_u8(r, &s->fpu_format);
	if (!state_reader_status(r)) {
		if (s->fpu_format == FPU_XSAVE && have_xsave)
			state_get_u32(r, &s->fpu_len);
		else if (s->fpu_format == FPU_LEGACY && !have_xsave)
			state_get_u32(r, &s->fpu_len);
		else
			state_refuse(r, "FPU state kept as %s, which this host's KVM %s",
				     s->fpu_format == FPU_XSAVE ? "XSAVE" : "a legacy FPU image",
				     have_xsave ? "does not take (it has XSAVE)"
						: "cannot load (no XSAVE)");
	}
	if (!state_reader_status(r)) {
		uint32_t want = s->fpu_format == FPU_LEGACY ? sizeof(struct kvm_fpu) : have_xsave;

		/* An XSAVE area may be smaller than this host's (fewer features), never larger. */
		if (s->fpu_format == FPU_LEGACY ? s->fpu_len != want
						: s->fpu_len < sizeof(struct kvm_xsave) ||
						      s->fpu_len > want)
			state_refuse(r, "FPU state of %u bytes where this host keeps %u", s->fpu_len,
				     want);
		else if (!(s->fpu = calloc(1, want)))
			state_refuse(r, "out of memory for the FPU state");
		else
			state_get_bytes(r, s->fpu, s->fpu_len);
	}
	state_get_bool(r, &s->has_xcrs);
	get_blob(r, "XCRs", &s->xcrs, sizeof(s->xcrs));
	state_get_u32(r, &nmsrs);
	if (!state_reader_status(r) && nmsrs > MAX_MSRS)
		state_refuse(r, "%u MSRs (at most %d)", nmsrs, MAX_MSRS);
	if (!state_reader_status(r) && !(s->msrs = msrs_alloc(nmsrs)))
		state_refuse(r, "out of memory for %u MSRs", nmsrs);
	for (uint32_t i = 0; !state_reader_status(r) && i < nmsrs; i++) {
		uint64_t data = 0;

		state_get_u32(r, &s->msrs->entries[i].index);
		state_get_u64(r, &data);
		s->msrs->entries[i].data = data;
	}
	if (s->msrs)
		s->msrs->nmsrs = nmsrs;
	state_get_bool(r, &s->has_lapic);
	if (!state_reader_status(r) && s->has_lapic != has_lapic)
		state_refuse(r, "saved %s an in-kernel local APIC, this VM has %s",
			     s->has_lapic ? "with" : "without", has_lapic ? "one" : "none");
	if (s->has_lapic)
		get_blob(r, "local APIC", &s->lapic, sizeof(s->lapic));
	get_blob(r, "vCPU events", &s->events, sizeof(s->events));
	state_get_u32(r, &s->mp.mp_state);
	get_blob(r, "debug registers", &s->debugregs, sizeof(s->debugregs));
	if (!state_reader_status(r) && s->mp.mp_state > KVM_MP_STATE_AP_RESET_HOLD)
		state_refuse(r, "MP state %u", s->mp.mp_state);
	state_close(r);
out:
	if (state_reader_status(r)) {
		vcpu_section_free(s);
		return log_set_error(state_reader_status(r), "vCPU %d's state: %s", vcpu_id,
				     state_reader_error(r));
	}
	return 0;
}

/* Writes the MSRs back. KVM_SET_MSRS stops at the first it refuses: one that this vCPU holds at
 * the saved value already (a paravirtual MSR whose feature the guest's CPUID does not offer,
 * still at its reset value) is passed over; any other refusal fails the restore. */
static int write_msrs(int vcpu_fd, int vcpu_id, struct kvm_msrs *msrs)
{
	uint32_t done = 0, n = msrs->nmsrs;
	int ret = 0;

	while (done < n) {
		struct kvm_msrs *rest = msrs_alloc(n - done);
		struct {
			struct kvm_msrs header;
			struct kvm_msr_entry entry;
		} now;
		int set;

		if (!rest)
			return log_set_error(-ENOMEM, "out of memory for MSRs");
		rest->nmsrs = n - done;
		memcpy(rest->entries, &msrs->entries[done], rest->nmsrs * sizeof(rest->entries[0]));
		set = ioctl(vcpu_fd, KVM_SET_MSRS, rest);
		free(rest);
		if (set < 0)
			return ioctl_failed("KVM_SET_MSRS", vcpu_id);
		done += (uint32_t)set;
		if (done == n)
			break;
		memset(&now, 0, sizeof(now));
		now.header.nmsrs = 1;
		now.entry.index = msrs->entries[done].index;
		if (ioctl(vcpu_fd, KVM_GET_MSRS, &now) == 1 ? now.entry.data != msrs->entries[done].data
							      : msrs->entries[done].data != 0) {
			ret = log_set_error(-EINVAL, "vCPU %d: KVM refused MSR 0x%x = 0x%llx",
					    vcpu_id, msrs->entries[done].index,
					    (unsigned long long)msrs->entries[done].data);
			break;
		}
		done++;
	}
	return ret;
}

int x86_vcpu_state_restore(int kvm_fd, int vcpu_fd, int vcpu_id, int has_lapic,
			   struct state_reader *r)
{
	struct vcpu_section s;
	int ret;

	ret = read_vcpu_section(kvm_fd, vcpu_id, has_lapic, r, &s);
	if (ret)
		return ret;
	ret = -1;
	if (ioctl(vcpu_fd, KVM_SET_MP_STATE, &s.mp) < 0) {
		ret = ioctl_failed("KVM_SET_MP_STATE", vcpu_id);
	} else if (ioctl(vcpu_fd, KVM_SET_REGS, &s.regs) < 0) {
		ret = ioctl_failed("KVM_SET_REGS", vcpu_id);
	} else if (ioctl(vcpu_fd, KVM_SET_SREGS, &s.sregs) < 0) {
		ret = ioctl_failed("KVM_SET_SREGS", vcpu_id);
	} else if (ioctl(vcpu_fd, s.fpu_format == FPU_XSAVE ? KVM_SET_XSAVE : KVM_SET_FPU,
			 s.fpu) < 0) {
		ret = ioctl_failed(s.fpu_format == FPU_XSAVE ? "KVM_SET_XSAVE" : "KVM_SET_FPU",
				   vcpu_id);
	} else if (s.has_xcrs && ioctl(vcpu_fd, KVM_SET_XCRS, &s.xcrs) < 0) {
		ret = ioctl_failed("KVM_SET_XCRS", vcpu_id);
	} else if (ioctl(vcpu_fd, KVM_SET_DEBUGREGS, &s.debugregs) < 0) {
		ret = ioctl_failed("KVM_SET_DEBUGREGS", vcpu_id);
	} else if (s.has_lapic && ioctl(vcpu_fd, KVM_SET_LAPIC, &s.lapic) < 0) {
		ret = ioctl_failed("KVM_SET_LAPIC", vcpu_id);
	} else if ((ret = write_msrs(vcpu_fd, vcpu_id, s.msrs)) != 0) {
		/* write_msrs said why */
	} else if (ioctl(vcpu_fd, KVM_SET_VCPU_EVENTS, &s.events) < 0) {
		ret = ioctl_failed("KVM_SET_VCPU_EVENTS", vcpu_id);
	} else {
		ret = 0;
	}
	vcpu_section_free(&s);
	return ret;
}

static const struct {
	uint32_t chip_id;
	const char *name;
} irqchips[] = {
    {KVM_IRQCHIP_PIC_MASTER, "the master PIC"},
    {KVM_IRQCHIP_PIC_SLAVE, "the slave PIC"},
    {KVM_IRQCHIP_IOAPIC, "the I/O APIC"},
};

#define NR_IRQCHIPS (sizeof(irqchips) / sizeof(irqchips[0]))

static uint64_t host_realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

int x86_vm_state_save(int vm_fd, int has_irqchip, struct state_writer *w)
{
	struct kvm_clock_data clock = {0};
	uint64_t realtime;
	struct kvm_irqchip chips[NR_IRQCHIPS];
	struct kvm_pit_state2 pit;

	if (ioctl(vm_fd, KVM_GET_CLOCK, &clock) < 0)
		return ioctl_failed("KVM_GET_CLOCK", -1);
	realtime = host_realtime_ns();
	memset(chips, 0, sizeof(chips));
	memset(&pit, 0, sizeof(pit));
	if (has_irqchip) {
		for (size_t i = 0; i < NR_IRQCHIPS; i++) {
			chips[i].chip_id = irqchips[i].chip_id;
			if (ioctl(vm_fd, KVM_GET_IRQCHIP, &chips[i]) < 0)
				return ioctl_failed("KVM_GET_IRQCHIP", -1);
		}
		if (ioctl(vm_fd, KVM_GET_PIT2, &pit) < 0)
			return ioctl_failed("KVM_GET_PIT2", -1);
	}
	state_begin(w, ARCH_STATE_VM, VM_STATE_VERSION);
	state_put_u64(w, clock.clock);
	state_put_u64(w, realtime);
	state_put_bool(w, has_irqchip);
	if (has_irqchip) {
		for (size_t i = 0; i < NR_IRQCHIPS; i++)
			put_blob(w, &chips[i], sizeof(chips[i]));
		put_blob(w, &pit, sizeof(pit));
	}
	state_end(w);
	if (state_writer_status(w))
		return log_set_error(state_writer_status(w), "out of memory saving the VM's state");
	return 0;
}

int x86_vm_state_restore(int vm_fd, int has_irqchip, bool clock_realtime,
			 struct state_reader *r)
{
	struct kvm_clock_data clock = {0};
	struct kvm_irqchip chips[NR_IRQCHIPS];
	struct kvm_pit_state2 pit;
	uint16_t version;
	uint64_t clock_ns = 0, saved_realtime = 0;
	bool had_irqchip = false;

	memset(chips, 0, sizeof(chips));
	if (state_open(r, ARCH_STATE_VM, VM_STATE_VERSION, &version) == 0) {
		state_get_u64(r, &clock_ns);
		state_get_u64(r, &saved_realtime);
		clock.clock = clock_ns;
		state_get_bool(r, &had_irqchip);
		if (!state_reader_status(r) && had_irqchip != !!has_irqchip)
			state_refuse(r, "saved %s the in-kernel irqchip, this VM has %s",
				     had_irqchip ? "with" : "without", has_irqchip ? "one" : "none");
		if (had_irqchip) {
			for (size_t i = 0; i < NR_IRQCHIPS; i++) {
				get_blob(r, irqchips[i].name, &chips[i], sizeof(chips[i]));
				if (!state_reader_status(r) &&
				    chips[i].chip_id != irqchips[i].chip_id)
					state_refuse(r, "%s's section names chip %u",
						     irqchips[i].name, chips[i].chip_id);
			}
			get_blob(r, "the PIT", &pit, sizeof(pit));
		}
		state_close(r);
	}
	if (state_reader_status(r))
		return log_set_error(state_reader_status(r), "the VM's state: %s",
				     state_reader_error(r));

	if (had_irqchip) {
		for (size_t i = 0; i < NR_IRQCHIPS; i++)
			if (ioctl(vm_fd, KVM_SET_IRQCHIP, &chips[i]) < 0)
				return ioctl_failed("KVM_SET_IRQCHIP", -1);
		if (ioctl(vm_fd, KVM_SET_PIT2, &pit) < 0)
			return ioctl_failed("KVM_SET_PIT2", -1);
	}
	/* The clock goes on from where it stood; with clock_realtime it moves on by the host's
	 * real time since the save (measured here rather than with KVM_CLOCK_REALTIME, which
	 * KVM only reports on hosts with a stable TSC clocksource). */
	if (clock_realtime) {
		uint64_t now = host_realtime_ns();

		if (now > saved_realtime)
			clock.clock += now - saved_realtime;
	}
	if (ioctl(vm_fd, KVM_SET_CLOCK, &clock) < 0)
		return ioctl_failed("KVM_SET_CLOCK", -1);
	return 0;
}
