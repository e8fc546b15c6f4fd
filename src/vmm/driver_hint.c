#include "vmm/driver_hint.h"
#include "base/log.h"
#include "base/uptime.h"
#include "devices/boot_timer.h"
#include "vmm/vm.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/timerfd.h>
#include <unistd.h>

enum driver_hint_verdict driver_hint_judge(const struct vm_device_guest_driver *d,
					   bool transport_found)
{
	if (d->ready)
		return DRIVER_HINT_NONE;
	if (!d->found && !transport_found)
		return DRIVER_HINT_TRANSPORT;
	if (d->taken)
		return DRIVER_HINT_UNFINISHED;
	return DRIVER_HINT_DRIVER;
}

void driver_hint_format(char *buf, size_t len, const struct vm_device *dev,
			const struct vm_device_guest_driver *d, enum driver_hint_verdict v,
			const char *when)
{
	const char *name = dev->ops->name, *sep = dev->id[0] ? " " : "", *id = dev->id;
	const char *option = NULL, *module = NULL;

	switch (v) {
	case DRIVER_HINT_NONE:
		snprintf(buf, len, "%s%s%s: set up by the guest", name, sep, id);
		return;
	case DRIVER_HINT_UNFINISHED:
		snprintf(buf, len,
			 "%s%s%s: the guest's driver did not finish setting this device up (%s; "
			 "status %#x%s)",
			 name, sep, id, when, d->status,
			 d->failed ? ", the driver set FAILED" : "");
		return;
	case DRIVER_HINT_TRANSPORT:
		option = d->transport_option;
		module = d->transport_module;
		snprintf(buf, len, "%s%s%s: the guest found no %s device at all (%s): ", name, sep,
			 id, d->transport ? d->transport : "virtio", when);
		break;
	case DRIVER_HINT_DRIVER:
		option = dev->ops->guest_option;
		module = dev->ops->guest_module;
		snprintf(buf, len, "%s%s%s: no driver in the guest took this device (%s): ", name,
			 sep, id, when);
		break;
	}
	if (option && module)
		snprintf(buf + strlen(buf), len - strlen(buf),
			 "its kernel needs %s (built in, or module %s loaded)", option, module);
	else if (option)
		snprintf(buf + strlen(buf), len - strlen(buf), "its kernel needs %s", option);
	else
		snprintf(buf + strlen(buf), len - strlen(buf), "its kernel lacks the driver");
}

static bool guest_driver(struct vm_device *dev, struct vm_device_guest_driver *d)
{
	memset(d, 0, sizeof(*d));
	return dev->ops->guest_driver && dev->ops->guest_driver(dev, d);
}

static bool same_transport(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* Whether the guest found any device on `transport`. */
static bool transport_found(const struct vm_devices *list, const char *transport)
{
	struct vm_device *dev;

	vm_devices_for_each(list, dev) {
		struct vm_device_guest_driver d;

		if (guest_driver(dev, &d) && d.found && same_transport(d.transport, transport))
			return true;
	}
	return false;
}

int driver_hint_check(const struct vm_devices *list, const char *when)
{
	struct vm_device *dev;
	int lines = 0;

	vm_devices_for_each(list, dev) {
		struct vm_device_guest_driver d;
		enum driver_hint_verdict v;
		char line[512];

		if (!guest_driver(dev, &d))
			continue;
		v = driver_hint_judge(&d, d.found || transport_found(list, d.transport));
		if (v == DRIVER_HINT_NONE)
			continue;
		driver_hint_format(line, sizeof(line), dev, &d, v, when);
		log_warn("%s", line);
		lines++;
	}
	return lines;
}

void driver_hint_clock_start(struct driver_hint_clock *k, uint64_t now_us)
{
	*k = (struct driver_hint_clock){.start_us = now_us, .last_us = now_us};
}

bool driver_hint_due(struct driver_hint_clock *k, uint64_t now_us, bool paused, uint64_t boot_us,
		     const char **when)
{
	uint64_t since;

	if (k->done)
		return false;
	if (now_us < k->last_us)
		now_us = k->last_us;
	if (paused)
		k->paused_us += now_us - k->last_us;
	k->last_us = now_us;
	if (paused)
		return false;
	since = now_us - k->start_us - k->paused_us;
	if (since >= DRIVER_HINT_AFTER_START_US) {
		*when = "60 s after the VM started, and the guest never wrote the boot timer: "
			"early, if it is still booting";
		k->done = true;
		return true;
	}
	if (boot_us == DRIVER_HINT_NO_BOOT || boot_us > now_us)
		return false;
	if (!k->boot_seen) {
		k->boot_seen = true;
		k->paused_at_boot = k->paused_us;
	}
	if (now_us - boot_us - (k->paused_us - k->paused_at_boot) >= DRIVER_HINT_AFTER_BOOT_US) {
		*when = "5 s after the guest's boot-timer write";
		k->done = true;
		return true;
	}
	return false;
}

void driver_hint_start(struct driver_hint *h, struct vm *vm)
{
	struct itimerspec its = {.it_interval = {.tv_sec = 1}, .it_value = {.tv_sec = 1}};
	struct vm_device *dev;
	bool any = false;

	h->fd = -1;
	driver_hint_clock_start(&h->clock, uptime_us());
	/* The hint names kernel options: a bare-metal (--raw) guest has none to lack. */
	if (!vm->cfg->kernel_path)
		return;
	vm_devices_for_each(&vm->devices, dev)
		any |= dev->ops->guest_driver != NULL;
	if (!any)
		return;
	h->fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (h->fd < 0 || timerfd_settime(h->fd, 0, &its, NULL) < 0) {
		log_debug("no missing-driver hint: timerfd: %s", strerror(errno));
		driver_hint_stop(h);
	}
}

void driver_hint_tick(struct driver_hint *h, struct vm *vm)
{
	struct vm_device *bt = vm_device_find(&vm->devices, VM_DEVICE_BOOT_TIMER, NULL);
	uint64_t expirations, boot_us = DRIVER_HINT_NO_BOOT;
	const char *when;

	if (h->fd < 0)
		return;
	if (read(h->fd, &expirations, sizeof(expirations)) < 0 && errno == EAGAIN)
		return;
	if (bt && !boot_timer_get_us(boot_timer_of(bt), &boot_us))
		boot_us = DRIVER_HINT_NO_BOOT;
	if (driver_hint_due(&h->clock, uptime_us(), vm_is_paused(vm), boot_us, &when)) {
		driver_hint_check(&vm->devices, when);
		driver_hint_stop(h);
	}
}

void driver_hint_stop(struct driver_hint *h)
{
	if (h->fd >= 0)
		close(h->fd);
	h->fd = -1;
}
