#include "devices/fw_cfg.h"
#include "base/device.h"
#include "base/guest_mem.h"
#include "base/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ITEMS (FW_CFG_FILE_FIRST + FW_CFG_MAX_FILES + 16)

/* Register offsets in each layout. */
#define PIO_SELECTOR 0
#define PIO_DATA     1
#define PIO_DMA	     4
#define MMIO_DATA     0
#define MMIO_SELECTOR 8
#define MMIO_DMA      16

#define DIR_ENTRY_SIZE 64 /* be32 size, be16 select, be16 reserved, char name[56] */
#define DMA_REQ_SIZE   16 /* be32 control, be32 length, be64 address */

struct fw_cfg_item {
	uint16_t key;
	uint32_t len;
	uint8_t *data;
	char name[FW_CFG_MAX_FILE_NAME]; /* files only */
};

struct fw_cfg {
	struct vm_device dev; /* its entry in the VM's device list */
	const struct guest_mem *mem;
	pthread_mutex_t lock;
	struct fw_cfg_item items[MAX_ITEMS];
	int nr_items;
	int nr_files;
	uint16_t selected;
	uint32_t offset;   /* into the selected item */
	uint32_t dma_high; /* the DMA address's high half, until the low half arrives */
	bool logged_bad_request;
};

static struct fw_cfg_item *find(struct fw_cfg *f, uint16_t key)
{
	for (int i = 0; i < f->nr_items; i++)
		if (f->items[i].key == key)
			return &f->items[i];
	return NULL;
}

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = v >> 24;
	p[1] = v >> 16;
	p[2] = v >> 8;
	p[3] = v;
}

static uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int set_item(struct fw_cfg *f, uint16_t key, uint8_t *data, uint32_t len,
		    const char *name)
{
	struct fw_cfg_item *it = find(f, key);

	if (!it) {
		if (f->nr_items == MAX_ITEMS)
			return -ENOSPC;
		it = &f->items[f->nr_items++];
		it->key = key;
	}
	free(it->data);
	it->data = data;
	it->len = len;
	snprintf(it->name, sizeof(it->name), "%s", name ? name : "");
	return 0;
}

static int by_name(const void *a, const void *b)
{
	const struct fw_cfg_item *const *x = a, *const *y = b;

	return strcmp((*x)->name, (*y)->name);
}

/* The directory as the guest reads it: a count, then the files sorted by name. */
static int rebuild_dir(struct fw_cfg *f)
{
	struct fw_cfg_item *files[FW_CFG_MAX_FILES];
	uint32_t len = 4 + (uint32_t)f->nr_files * DIR_ENTRY_SIZE;
	uint8_t *dir = calloc(1, len);
	int n = 0;

	if (!dir)
		return -ENOMEM;
	for (int i = 0; i < f->nr_items; i++)
		if (f->items[i].key >= FW_CFG_FILE_FIRST && f->items[i].key < FW_CFG_WRITE_CHANNEL)
			files[n++] = &f->items[i];
	qsort(files, (size_t)n, sizeof(files[0]), by_name);
	put_be32(dir, (uint32_t)n);
	for (int i = 0; i < n; i++) {
		uint8_t *e = dir + 4 + i * DIR_ENTRY_SIZE;

		put_be32(e, files[i]->len);
		e[4] = files[i]->key >> 8;
		e[5] = files[i]->key & 0xff;
		memcpy(e + 8, files[i]->name, strlen(files[i]->name));
	}
	return set_item(f, FW_CFG_FILE_DIR, dir, len, NULL);
}

static void fw_cfg_device_destroy(struct vm_device *dev)
{
	fw_cfg_destroy((struct fw_cfg *)dev);
}

static void fw_cfg_device_reset(struct vm_device *dev)
{
	struct fw_cfg *f = (struct fw_cfg *)dev;

	f->selected = 0;
	f->offset = 0;
	f->dma_high = 0;
}

static const struct vm_device_ops fw_cfg_device_ops = {
	.name = "fw-cfg",
	.reset = fw_cfg_device_reset,
	.destroy = fw_cfg_device_destroy,
};

struct fw_cfg *fw_cfg_create(const struct guest_mem *mem)
{
	struct fw_cfg *f = calloc(1, sizeof(*f));

	if (!f)
		return NULL;
	vm_device_init(&f->dev, VM_DEVICE_FW_CFG, &fw_cfg_device_ops, NULL);
	f->mem = mem;
	pthread_mutex_init(&f->lock, NULL);
	if (fw_cfg_add_bytes(f, FW_CFG_SIGNATURE, "QEMU", 4) ||
	    fw_cfg_add_u32(f, FW_CFG_ID, FW_CFG_ID_TRADITIONAL | FW_CFG_ID_DMA) || rebuild_dir(f)) {
		fw_cfg_destroy(f);
		return NULL;
	}
	return f;
}

void fw_cfg_destroy(struct fw_cfg *f)
{
	if (!f)
		return;
	for (int i = 0; i < f->nr_items; i++)
		free(f->items[i].data);
	pthread_mutex_destroy(&f->lock);
	free(f);
}

struct vm_device *fw_cfg_device(struct fw_cfg *f)
{
	return f ? &f->dev : NULL;
}

static bool plain_key(uint16_t key)
{
	return key != FW_CFG_FILE_DIR && !(key >= FW_CFG_FILE_FIRST && key < FW_CFG_WRITE_CHANNEL) &&
	       !(key & FW_CFG_WRITE_CHANNEL);
}

int fw_cfg_add_bytes_owned(struct fw_cfg *f, uint16_t key, void *data, uint32_t len)
{
	int ret;

	if (!plain_key(key)) {
		free(data);
		return -EINVAL;
	}
	ret = set_item(f, key, data, len, NULL);
	if (ret)
		free(data);
	return ret;
}

int fw_cfg_add_bytes(struct fw_cfg *f, uint16_t key, const void *data, uint32_t len)
{
	uint8_t *copy = malloc(len ? len : 1);

	if (!copy)
		return -ENOMEM;
	memcpy(copy, data, len);
	return fw_cfg_add_bytes_owned(f, key, copy, len);
}

int fw_cfg_add_u16(struct fw_cfg *f, uint16_t key, uint16_t v)
{
	uint8_t b[2] = {v & 0xff, v >> 8};

	return fw_cfg_add_bytes(f, key, b, sizeof(b));
}

int fw_cfg_add_u32(struct fw_cfg *f, uint16_t key, uint32_t v)
{
	uint8_t b[4];

	for (int i = 0; i < 4; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	return fw_cfg_add_bytes(f, key, b, sizeof(b));
}

int fw_cfg_add_u64(struct fw_cfg *f, uint16_t key, uint64_t v)
{
	uint8_t b[8];

	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	return fw_cfg_add_bytes(f, key, b, sizeof(b));
}

int fw_cfg_add_file(struct fw_cfg *f, const char *name, const void *data, uint32_t len)
{
	uint16_t key = (uint16_t)(FW_CFG_FILE_FIRST + f->nr_files);
	uint8_t *copy;
	int ret;

	if (!name || !name[0] || strlen(name) >= FW_CFG_MAX_FILE_NAME)
		return -EINVAL;
	for (int i = 0; i < f->nr_items; i++)
		if (f->items[i].key >= FW_CFG_FILE_FIRST && !strcmp(f->items[i].name, name))
			return -EEXIST;
	if (f->nr_files == FW_CFG_MAX_FILES)
		return -ENOSPC;
	copy = malloc(len ? len : 1);
	if (!copy)
		return -ENOMEM;
	memcpy(copy, data, len);
	ret = set_item(f, key, copy, len, name);
	if (ret) {
		free(copy);
		return ret;
	}
	f->nr_files++;
	ret = rebuild_dir(f);
	return ret ? ret : key;
}

static void select_item(struct fw_cfg *f, uint16_t key)
{
	f->selected = key & (uint16_t)~FW_CFG_WRITE_CHANNEL;
	f->offset = 0;
}

/* The next `len` bytes of the selected item (zeros past its end). */
static void read_data(struct fw_cfg *f, uint8_t *out, uint32_t len)
{
	const struct fw_cfg_item *it = find(f, f->selected);

	for (uint32_t i = 0; i < len; i++) {
		out[i] = it && f->offset < it->len ? it->data[f->offset] : 0;
		if (f->offset != UINT32_MAX)
			f->offset++;
	}
}

/* One DMA request: the control word back in the request, 0 or ERROR. */
static uint32_t dma_transfer(struct fw_cfg *f, uint32_t control, uint32_t len, uint64_t addr)
{
	const struct fw_cfg_item *it;
	uint32_t avail = 0, copy;
	uint8_t *dst;

	if (control & FW_CFG_DMA_CTL_SELECT)
		select_item(f, (uint16_t)(control >> 16));
	if (control & FW_CFG_DMA_CTL_WRITE)
		return FW_CFG_DMA_CTL_ERROR; /* no item is writable */
	if (control & FW_CFG_DMA_CTL_READ) {
		/* guest_mem_ptr refuses ranges that wrap or leave guest RAM. */
		dst = guest_mem_ptr(f->mem, addr, len);
		if (!dst)
			return FW_CFG_DMA_CTL_ERROR;
		it = find(f, f->selected);
		if (it && f->offset < it->len)
			avail = it->len - f->offset;
		copy = len < avail ? len : avail;
		if (copy)
			memcpy(dst, it->data + f->offset, copy);
		memset(dst + copy, 0, len - copy);
	} else if (!(control & FW_CFG_DMA_CTL_SKIP)) {
		return 0; /* a bare select */
	}
	f->offset = f->offset > UINT32_MAX - len ? UINT32_MAX : f->offset + len;
	return 0;
}

/* The guest wrote the request's address: read the request, do it, write the status back. */
static void dma_request(struct fw_cfg *f, uint64_t addr)
{
	uint8_t req[DMA_REQ_SIZE], status[4];
	uint64_t data_addr = 0;
	uint32_t result;

	if (guest_mem_read(f->mem, addr, req, sizeof(req))) {
		if (!f->logged_bad_request) {
			f->logged_bad_request = true;
			log_warn("fw-cfg: DMA request at 0x%llx is not in guest RAM; ignored",
				 (unsigned long long)addr);
		}
		return;
	}
	for (int i = 0; i < 8; i++)
		data_addr = data_addr << 8 | req[8 + i];
	result = dma_transfer(f, get_be32(req), get_be32(req + 4), data_addr);
	put_be32(status, result);
	guest_mem_write(f->mem, addr, status, sizeof(status));
}

static uint64_t get_be(const uint8_t *p, uint32_t len)
{
	uint64_t v = 0;

	for (uint32_t i = 0; i < len; i++)
		v = v << 8 | p[i];
	return v;
}

/* `off` is the offset into the 8-byte DMA register. */
static void dma_reg_write(struct fw_cfg *f, uint32_t off, const uint8_t *data, uint32_t len)
{
	if (off == 0 && len == 8) {
		dma_request(f, get_be(data, 8));
	} else if (off == 0 && len == 4) {
		f->dma_high = (uint32_t)get_be(data, 4);
	} else if (off == 4 && len == 4) {
		dma_request(f, (uint64_t)f->dma_high << 32 | get_be(data, 4));
		f->dma_high = 0;
	}
}

static void dma_reg_read(uint32_t off, uint8_t *out, uint32_t len)
{
	for (uint32_t i = 0; i < len; i++)
		out[i] = off + i < 8 ? (uint8_t)(FW_CFG_DMA_SIGNATURE >> (8 * (7 - (off + i)))) : 0;
}

static void pio_read(void *opaque, uint64_t offset, void *data, uint32_t len)
{
	struct fw_cfg *f = opaque;

	memset(data, 0, len);
	pthread_mutex_lock(&f->lock);
	if (offset == PIO_DATA)
		read_data(f, data, len);
	else if (offset >= PIO_DMA && offset + len <= PIO_DMA + 8)
		dma_reg_read((uint32_t)(offset - PIO_DMA), data, len);
	pthread_mutex_unlock(&f->lock);
}

static void pio_write(void *opaque, uint64_t offset, const void *data, uint32_t len)
{
	struct fw_cfg *f = opaque;
	const uint8_t *b = data;

	pthread_mutex_lock(&f->lock);
	if (offset == PIO_SELECTOR && len == 2)
		select_item(f, (uint16_t)(b[0] | b[1] << 8));
	else if (offset >= PIO_DMA && offset + len <= PIO_DMA + 8)
		dma_reg_write(f, (uint32_t)(offset - PIO_DMA), b, len);
	pthread_mutex_unlock(&f->lock);
}

static void mmio_read(void *opaque, uint64_t offset, void *data, uint32_t len)
{
	struct fw_cfg *f = opaque;

	memset(data, 0, len);
	pthread_mutex_lock(&f->lock);
	if (offset == MMIO_DATA && len <= 8)
		read_data(f, data, len);
	else if (offset >= MMIO_DMA && offset + len <= MMIO_DMA + 8)
		dma_reg_read((uint32_t)(offset - MMIO_DMA), data, len);
	pthread_mutex_unlock(&f->lock);
}

static void mmio_write(void *opaque, uint64_t offset, const void *data, uint32_t len)
{
	struct fw_cfg *f = opaque;
	const uint8_t *b = data;

	pthread_mutex_lock(&f->lock);
	if (offset == MMIO_SELECTOR && len == 2)
		select_item(f, (uint16_t)(b[0] << 8 | b[1]));
	else if (offset >= MMIO_DMA && offset + len <= MMIO_DMA + 8)
		dma_reg_write(f, (uint32_t)(offset - MMIO_DMA), b, len);
	pthread_mutex_unlock(&f->lock);
}

const struct bus_device_ops fw_cfg_pio_ops = {.read = pio_read, .write = pio_write};
const struct bus_device_ops fw_cfg_mmio_ops = {.read = mmio_read, .write = mmio_write};
