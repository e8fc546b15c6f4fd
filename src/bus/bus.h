/* Address dispatch: a registry of [base, base + len) ranges -> device handlers, one registry for
 * port I/O and one for MMIO. A vCPU exit looks its address up here and calls the device with the
 * offset into its range. Ranges never overlap. Lookups run concurrently on every vCPU thread; an
 * entry is reference-counted, so bus_unregister() can wait until no vCPU is still inside it. */
#ifndef SKIFF_BUS_H
#define SKIFF_BUS_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct bus_device_ops {
	/* `data` holds `len` bytes (1, 2, 4 or 8, little-endian). Reads must fill all of it. */
	void (*read)(void *opaque, uint64_t offset, void *data, uint32_t len);
	void (*write)(void *opaque, uint64_t offset, const void *data, uint32_t len);
};

struct bus_entry;

struct bus {
	const char *name; /* "pio" or "mmio", for messages */
	pthread_rwlock_t lock;
	struct bus_entry **entries; /* sorted by base */
	int nr_entries;
	int capacity;
};

void bus_init(struct bus *bus, const char *name);
void bus_destroy(struct bus *bus);

/* -EINVAL for an empty or wrapping range, -EEXIST when it overlaps a registered one. */
int bus_register(struct bus *bus, uint64_t base, uint64_t len, const struct bus_device_ops *ops,
		 void *opaque, const char *name);
/* Removes the range starting at `base`; returns once no vCPU is inside its handlers. */
int bus_unregister(struct bus *bus, uint64_t base);

/* Calls the device whose range holds the whole access. Returns 0, or -ENOENT when no device
 * claims the access (reads then see all ones). */
int bus_access(struct bus *bus, uint64_t addr, void *data, uint32_t len, bool is_write);

/* Name of the device at `addr`, or NULL; for messages and tests. */
const char *bus_lookup_name(struct bus *bus, uint64_t addr);

#endif
