#include "devices/fw_cfg_loader.h"
#include "devices/fw_cfg.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Offsets in an entry: the command, then the union. */
#define NAME1  4
#define NAME2  (NAME1 + FW_CFG_MAX_FILE_NAME)
#define AFTER1 NAME2			      /* the first field after one name */
#define AFTER2 (NAME2 + FW_CFG_MAX_FILE_NAME) /* after two */

void fw_cfg_loader_init(struct fw_cfg_loader *l)
{
	memset(l, 0, sizeof(*l));
}

void fw_cfg_loader_free(struct fw_cfg_loader *l)
{
	free(l->buf);
	fw_cfg_loader_init(l);
}

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint8_t *entry(struct fw_cfg_loader *l, uint32_t command)
{
	uint8_t *e;

	if (l->err)
		return NULL;
	if (l->len + FW_CFG_LOADER_ENTRY_SIZE > l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16 * FW_CFG_LOADER_ENTRY_SIZE;
		uint8_t *buf = realloc(l->buf, cap);

		if (!buf) {
			l->err = -ENOMEM;
			return NULL;
		}
		l->buf = buf;
		l->cap = cap;
	}
	e = l->buf + l->len;
	memset(e, 0, FW_CFG_LOADER_ENTRY_SIZE);
	put_le32(e, command);
	l->len += FW_CFG_LOADER_ENTRY_SIZE;
	return e;
}

static void put_name(struct fw_cfg_loader *l, uint8_t *at, const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n >= FW_CFG_MAX_FILE_NAME) {
		l->err = -EINVAL;
		return;
	}
	memcpy(at, name, n);
}

void fw_cfg_loader_allocate(struct fw_cfg_loader *l, const char *file, uint32_t align, uint8_t zone)
{
	uint8_t *e = entry(l, FW_CFG_LOADER_ALLOCATE);

	if (!e)
		return;
	put_name(l, e + NAME1, file);
	put_le32(e + AFTER1, align);
	e[AFTER1 + 4] = zone;
}

void fw_cfg_loader_add_pointer(struct fw_cfg_loader *l, const char *dest_file, const char *src_file,
			       uint32_t offset, uint8_t size)
{
	uint8_t *e = entry(l, FW_CFG_LOADER_ADD_POINTER);

	if (!e)
		return;
	put_name(l, e + NAME1, dest_file);
	put_name(l, e + NAME2, src_file);
	put_le32(e + AFTER2, offset);
	e[AFTER2 + 4] = size;
}

void fw_cfg_loader_add_checksum(struct fw_cfg_loader *l, const char *file, uint32_t offset,
				uint32_t start, uint32_t length)
{
	uint8_t *e = entry(l, FW_CFG_LOADER_ADD_CHECKSUM);

	if (!e)
		return;
	put_name(l, e + NAME1, file);
	put_le32(e + AFTER1, offset);
	put_le32(e + AFTER1 + 4, start);
	put_le32(e + AFTER1 + 8, length);
}

int fw_cfg_loader_finish(struct fw_cfg_loader *l)
{
	return l->err;
}
