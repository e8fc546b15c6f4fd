#include "bus/bus.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct bus_entry {
	uint64_t base;
	uint64_t len;
	const struct bus_device_ops *ops;
	void *opaque;
	const char *name;
	/* One reference held by the registry, one by each vCPU inside the handlers. */
	int refs;
	pthread_mutex_t ref_lock;
	pthread_cond_t ref_released;
};

void bus_init(struct bus *bus, const char *name)
{
	memset(bus, 0, sizeof(*bus));
	bus->name = name;
	pthread_rwlock_init(&bus->lock, NULL);
}

static void entry_free(struct bus_entry *e)
{
	pthread_mutex_destroy(&e->ref_lock);
	pthread_cond_destroy(&e->ref_released);
	free(e);
}

void bus_destroy(struct bus *bus)
{
	for (int i = 0; i < bus->nr_entries; i++)
		entry_free(bus->entries[i]);
	free(bus->entries);
	pthread_rwlock_destroy(&bus->lock);
	bus->entries = NULL;
	bus->nr_entries = bus->capacity = 0;
}

/* Index of the first entry whose end lies above addr (the only one that can contain it). */
static int find_slot(const struct bus *bus, uint64_t addr)
{
	int lo = 0, hi = bus->nr_entries;

	while (lo < hi) {
		int mid = lo + (hi - lo) / 2;
		const struct bus_entry *e = bus->entries[mid];

		if (e->base + (e->len - 1) < addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int bus_register(struct bus *bus, uint64_t base, uint64_t len, const struct bus_device_ops *ops,
		 void *opaque, const char *name)
{
	struct bus_entry *e;
	int slot, ret = 0;

	if (len == 0 || base + (len - 1) < base || !ops)
		return -EINVAL;
	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	*e = (struct bus_entry){ .base = base, .len = len, .ops = ops, .opaque = opaque,
				 .name = name, .refs = 1 };
	pthread_mutex_init(&e->ref_lock, NULL);
	pthread_cond_init(&e->ref_released, NULL);

	pthread_rwlock_wrlock(&bus->lock);
	slot = find_slot(bus, base);
	if (slot < bus->nr_entries && bus->entries[slot]->base <= base + (len - 1)) {
		ret = -EEXIST;
		goto out;
	}
	if (bus->nr_entries == bus->capacity) {
		int cap = bus->capacity ? bus->capacity * 2 : 16;
		struct bus_entry **n = realloc(bus->entries, (size_t)cap * sizeof(*n));

		if (!n) {
			ret = -ENOMEM;
			goto out;
		}
		bus->entries = n;
		bus->capacity = cap;
	}
	memmove(&bus->entries[slot + 1], &bus->entries[slot],
		(size_t)(bus->nr_entries - slot) * sizeof(*bus->entries));
	bus->entries[slot] = e;
	bus->nr_entries++;
out:
	pthread_rwlock_unlock(&bus->lock);
	if (ret)
		entry_free(e);
	return ret;
}

static void entry_put(struct bus_entry *e)
{
	pthread_mutex_lock(&e->ref_lock);
	if (--e->refs <= 1)
		pthread_cond_broadcast(&e->ref_released);
	pthread_mutex_unlock(&e->ref_lock);
}

int bus_unregister(struct bus *bus, uint64_t base)
{
	struct bus_entry *e = NULL;
	int slot;

	pthread_rwlock_wrlock(&bus->lock);
	slot = find_slot(bus, base);
	if (slot < bus->nr_entries && bus->entries[slot]->base == base) {
		e = bus->entries[slot];
		memmove(&bus->entries[slot], &bus->entries[slot + 1],
			(size_t)(bus->nr_entries - slot - 1) * sizeof(*bus->entries));
		bus->nr_entries--;
	}
	pthread_rwlock_unlock(&bus->lock);
	if (!e)
		return -ENOENT;

	pthread_mutex_lock(&e->ref_lock);
	while (e->refs > 1)
		pthread_cond_wait(&e->ref_released, &e->ref_lock);
	pthread_mutex_unlock(&e->ref_lock);
	entry_free(e);
	return 0;
}

static struct bus_entry *lookup_get(struct bus *bus, uint64_t addr, uint32_t len)
{
	struct bus_entry *e = NULL;
	int slot;

	pthread_rwlock_rdlock(&bus->lock);
	slot = find_slot(bus, addr);
	if (slot < bus->nr_entries) {
		struct bus_entry *c = bus->entries[slot];
		uint64_t last = addr + (len ? len - 1 : 0);

		if (c->base <= addr && last >= addr && last <= c->base + (c->len - 1)) {
			e = c;
			pthread_mutex_lock(&e->ref_lock);
			e->refs++;
			pthread_mutex_unlock(&e->ref_lock);
		}
	}
	pthread_rwlock_unlock(&bus->lock);
	return e;
}

int bus_access(struct bus *bus, uint64_t addr, void *data, uint32_t len, bool is_write)
{
	struct bus_entry *e = lookup_get(bus, addr, len);

	if (!e) {
		if (!is_write)
			memset(data, 0xff, len);
		return -ENOENT;
	}
	if (is_write) {
		if (e->ops->write)
			e->ops->write(e->opaque, addr - e->base, data, len);
	} else {
		if (e->ops->read)
			e->ops->read(e->opaque, addr - e->base, data, len);
		else
			memset(data, 0xff, len);
	}
	entry_put(e);
	return 0;
}

const char *bus_lookup_name(struct bus *bus, uint64_t addr)
{
	struct bus_entry *e = lookup_get(bus, addr, 1);
	const char *name;

	if (!e)
		return NULL;
	name = e->name;
	entry_put(e);
	return name;
}
