#include "virtio/device.h"
#include "base/event_loop.h"
#include "base/log.h"

#include <stdarg.h>
#include <stdio.h>

void virtio_dev_fail(struct virtio_device *dev, int q, const char *fmt, ...)
{
	char reason[256];
	va_list ap;

	/* A vCPU thread (transport) and the worker may both find fault at once: one of them logs.
	 */
	if (__atomic_exchange_n(&dev->failed, true, __ATOMIC_ACQ_REL))
		return;
	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	if (q >= 0)
		log_error("%s: queue %d: %s", dev->name, q, reason);
	else
		log_error("%s: %s", dev->name, reason);
	if (dev->fail)
		dev->fail(dev, q, reason);
}

int virtio_dev_on_worker(struct virtio_device *dev, void (*fn)(void *arg), void *arg)
{
	int ret;

	if (!dev->loop) {
		fn(arg);
		return 0;
	}
	ret = event_loop_call(dev->loop, fn, arg);
	if (ret < 0)
		return log_set_error(ret, "%s: the device's worker has stopped", dev->name);
	return 0;
}
