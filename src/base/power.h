/* How a device asks the VM to stop: the guest powered off (ACPI sleep register, PSCI), reset
 * (i8042 pulse, ACPI reset register), or halted for good. Devices hold a `struct power_ctl` and
 * never know about the VM's threads; the VM records the first reason and stops every vCPU. */
#ifndef SKIFF_POWER_H
#define SKIFF_POWER_H

enum vm_stop_reason {
	VM_STOP_NONE = 0,
	VM_STOP_POWEROFF, /* guest powered off: exit status 0 */
	VM_STOP_RESET,	  /* guest asked for a reset: the VM ends, exit status 0 (as Firecracker) */
	VM_STOP_HALT,	  /* guest halted for good: exit status 0 */
	VM_STOP_SIGNAL,	  /* the user stopped skiff (signal, escape key) */
	VM_STOP_ERROR,	  /* triple fault, KVM internal error, ...: exit status 1 */
	VM_STOP_EXIT,	  /* a test device (x86 --debug-exit) chose skiff's exit status */
	VM_STOP_MIGRATED, /* live migration handed the VM to another skiff: exit status 0 */
};

/* The longest reason kept with a stop, terminator included: longer ones are cut. */
#define VM_STOP_WHY_MAX 384

struct power_ctl {
	void (*request_stop)(void *ctx, enum vm_stop_reason reason, const char *why);
	/* VM_STOP_EXIT with the exit status skiff is to end with (0-255). */
	void (*request_exit)(void *ctx, int status, const char *why);
	void *ctx;
};

static inline void power_request_stop(const struct power_ctl *p, enum vm_stop_reason reason,
				      const char *why)
{
	if (p && p->request_stop)
		p->request_stop(p->ctx, reason, why);
}

static inline void power_request_exit(const struct power_ctl *p, int status, const char *why)
{
	if (p && p->request_exit)
		p->request_exit(p->ctx, status, why);
}

const char *vm_stop_reason_name(enum vm_stop_reason reason);

#endif
