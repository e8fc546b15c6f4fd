#include "base/device.h"
#include "base/log.h"
#include "base/state.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

void vm_device_init(struct vm_device *dev, enum vm_device_kind kind,
		    const struct vm_device_ops *ops, const char *id)
{
	memset(dev, 0, sizeof(*dev));
	dev->kind = kind;
	dev->ops = ops;
	snprintf(dev->id, sizeof(dev->id), "%s", id ? id : "");
}

void vm_device_add(struct vm_devices *list, struct vm_device *dev)
{
	dev->next = NULL;
	dev->prev = list->last;
	if (list->last)
		list->last->next = dev;
	else
		list->first = dev;
	list->last = dev;
	list->nr++;
}

struct vm_device *vm_device_find(const struct vm_devices *list, enum vm_device_kind kind,
				 const char *id)
{
	struct vm_device *dev;

	if (id && !id[0])
		return NULL;
	vm_devices_for_each(list, dev)
		if (dev->kind == kind && (!id || strcmp(dev->id, id) == 0))
			return dev;
	return NULL;
}

const char *vm_device_label(const struct vm_device *dev)
{
	return dev->id[0] ? dev->id : dev->ops->name;
}

struct json_t *vm_device_stats(struct vm_device *dev)
{
	return dev->ops->stats ? dev->ops->stats(dev) : NULL;
}

int vm_device_update(struct vm_device *dev, const struct vm_device_update *up)
{
	if (!dev->ops->update)
		return log_set_error(-ENOTSUP, "%s %s cannot be changed while it runs",
				     dev->ops->name, vm_device_label(dev));
	return dev->ops->update(dev, up);
}

int vm_device_save(struct vm_device *dev, struct state_writer *w)
{
	return dev->ops->save ? dev->ops->save(dev, w) : -ENOTSUP;
}

int vm_device_restore(struct vm_device *dev, struct state_reader *r)
{
	return dev->ops->restore ? dev->ops->restore(dev, r) : -ENOTSUP;
}

int vm_devices_save(struct vm_devices *list, struct state_writer *w)
{
	struct vm_device *dev;

	vm_devices_for_each(list, dev) {
		int ret = vm_device_save(dev, w);

		if (ret == -ENOTSUP)
			log_error("%s %s cannot save its state", dev->ops->name,
				  vm_device_label(dev));
		if (ret)
			return ret;
	}
	return 0;
}

int vm_devices_hold(struct vm_devices *list, bool held)
{
	struct vm_device *dev;
	int ret = 0;

	vm_devices_for_each(list, dev) {
		int err = dev->ops->hold ? dev->ops->hold(dev, held) : 0;

		if (err && !ret)
			ret = err;
		if (ret && held)
			break;
	}
	if (ret && held)
		for (struct vm_device *d = list->first; d != dev; d = d->next)
			if (d->ops->hold)
				d->ops->hold(d, false);
	return ret;
}

int vm_devices_restore(struct vm_devices *list, struct state_reader *r)
{
	struct vm_device *dev;

	vm_devices_for_each(list, dev) {
		int ret = vm_device_restore(dev, r);

		if (ret == -ENOTSUP)
			log_error("%s %s cannot restore its state", dev->ops->name,
				  vm_device_label(dev));
		if (ret)
			return ret;
	}
	if (!state_reader_at_end(r))
		return state_refuse(r, "%zu bytes of state after the last device", r->len - r->pos);
	return 0;
}

void vm_devices_reset(struct vm_devices *list)
{
	struct vm_device *dev;

	vm_devices_for_each(list, dev)
		if (dev->ops->reset)
			dev->ops->reset(dev);
}

void vm_devices_destroy(struct vm_devices *list)
{
	struct vm_device *dev = list->last;

	while (dev) {
		struct vm_device *prev = dev->prev;

		dev->ops->destroy(dev);
		dev = prev;
	}
	memset(list, 0, sizeof(*list));
}
