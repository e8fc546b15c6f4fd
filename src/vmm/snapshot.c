#include "vmm/snapshot.h"
#include "arch/arch.h"
#include "base/device.h"
#include "base/log.h"
#include "base/state.h"
#include "config/config_json.h"
#include "config/vm_config.h"
#include "version.h"
#include "vmm/vm.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include <zlib.h>

#define MAGIC	     "SKIFFSNP"
#define HEADER_SIZE  (8 + 4 + 4 + 32 + 8 + 4 + 4)
#define CONFIG_V1    1
#define MAX_CONFIG   (1u << 20) /* the description's JSON: a few KiB in practice */
#define MAX_PAYLOAD  (64u << 20) /* state without memory: far below this */

#if defined(__x86_64__)
#define THIS_ARCH 1
#elif defined(__aarch64__)
#define THIS_ARCH 2
#endif

static const char *arch_name(uint32_t arch)
{
	return arch == 1 ? "x86_64" : arch == 2 ? "arm64" : "an unknown architecture";
}

static void put_le(uint8_t *p, uint64_t v, int bytes)
{
	for (int i = 0; i < bytes; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, int bytes)
{
	uint64_t v = 0;

	for (int i = 0; i < bytes; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static int write_all(int fd, const void *buf, size_t len, const char *path)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len > (1u << 30) ? (1u << 30) : len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return log_set_error(n < 0 ? -errno : -EIO, "%s: %s", path,
					     n < 0 ? strerror(errno) : "short write");
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

#define PAGE 4096

static bool page_is_zero(const uint8_t *p)
{
	static const uint8_t zero[PAGE];

	return memcmp(p, zero, PAGE) == 0;
}

/* Writes a memory region at the file's offset, leaving holes where whole pages are zero (a
 * guest's untouched memory): the file is sparse and its length still the region's. */
static int write_sparse(int fd, const uint8_t *p, size_t len, const char *path)
{
	size_t at = 0;

	while (at < len) {
		size_t run = at;

		while (run < len && len - run >= PAGE && page_is_zero(p + run))
			run += PAGE;
		if (run > at && lseek(fd, (off_t)(run - at), SEEK_CUR) < 0)
			return log_set_error(-errno, "%s: %s", path, strerror(errno));
		at = run;
		while (run < len && !(len - run >= PAGE && page_is_zero(p + run)))
			run += len - run >= PAGE ? PAGE : len - run;
		if (run > at) {
			int ret = write_all(fd, p + at, run - at, path);

			if (ret)
				return ret;
		}
		at = run;
	}
	return 0;
}

/* Creates (or truncates) path, writes the parts (sparse: whole zero pages become holes), and
 * syncs it. */
static int write_file(const char *path, const struct iovec *parts, int nr, bool sparse)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	uint64_t total = 0;
	int ret = 0;

	if (fd < 0)
		return log_set_error(-errno, "%s: %s", path, strerror(errno));
	for (int i = 0; !ret && i < nr; i++) {
		ret = sparse ? write_sparse(fd, parts[i].iov_base, parts[i].iov_len, path)
			     : write_all(fd, parts[i].iov_base, parts[i].iov_len, path);
		total += parts[i].iov_len;
	}
	/* A hole at the end is no hole until the file's length covers it. */
	if (!ret && sparse && ftruncate(fd, (off_t)total) < 0)
		ret = log_set_error(-errno, "%s: %s", path, strerror(errno));
	if (!ret && fsync(fd) < 0)
		ret = log_set_error(-errno, "%s: %s", path, strerror(errno));
	close(fd);
	return ret;
}

static int save_state(struct vm *vm, struct state_writer *w)
{
	char *json = config_json_vm_config_dump(vm->cfg);
	int ret;

	if (!json)
		return log_set_error(-ENOMEM, "out of memory for the VM's description");
	state_begin(w, SNAPSHOT_TAG_CONFIG, CONFIG_V1);
	state_put_u32(w, (uint32_t)strlen(json));
	state_put_bytes(w, json, strlen(json));
	state_put_u64(w, guest_mem_size(&vm->mem));
	state_end(w);
	free(json);
	ret = arch_vm_state_save(vm, w);
	for (int i = 0; !ret && i < vm->nr_vcpus; i++)
		ret = arch_vcpu_state_save(vm, &vm->vcpus[i], w);
	if (!ret) {
		ret = vm_devices_save(&vm->devices, w);
		if (ret && !log_last_error()[0])
			log_set_error(ret, "a device could not save its state: %s", strerror(-ret));
	}
	if (!ret && state_writer_status(w))
		ret = log_set_error(state_writer_status(w), "out of memory for the VM's state");
	return ret;
}

int snapshot_create(struct vm *vm, const char *state_path, const char *mem_path)
{
	struct state_writer w;
	struct iovec parts[GUEST_MEM_MAX_REGIONS];
	uint8_t header[HEADER_SIZE];
	int ret;

	if (!vm_is_paused(vm))
		return log_set_error(-EINVAL, "the microVM must be paused to take a snapshot");
	if (!strcmp(state_path, mem_path))
		return log_set_error(-EINVAL, "the snapshot and memory files are the same path");
	log_clear_last_error();
	state_writer_init(&w);
	ret = save_state(vm, &w);
	if (ret)
		goto out;
	if (w.len > MAX_PAYLOAD) {
		ret = log_set_error(-EFBIG, "the VM's state is %zu bytes, more than a state file holds",
				    w.len);
		goto out;
	}

	memset(header, 0, sizeof(header));
	memcpy(header, MAGIC, 8);
	put_le(header + 8, SNAPSHOT_FORMAT, 4);
	put_le(header + 12, THIS_ARCH, 4);
	strncpy((char *)header + 16, SKIFF_VERSION, 31);
	put_le(header + 48, w.len, 8);
	put_le(header + 56, crc32(crc32(0, NULL, 0), w.buf, (uInt)w.len), 4);

	for (int i = 0; i < vm->mem.nr_regions; i++)
		parts[i] = (struct iovec){vm->mem.regions[i].hva, vm->mem.regions[i].size};
	ret = write_file(mem_path, parts, vm->mem.nr_regions, true);
	if (ret)
		goto out;
	parts[0] = (struct iovec){header, sizeof(header)};
	parts[1] = (struct iovec){w.buf, w.len};
	ret = write_file(state_path, parts, 2, false);
	if (!ret)
		log_info("snapshot: state in %s (%zu bytes), memory in %s (%llu MiB)", state_path,
			 sizeof(header) + w.len, mem_path,
			 (unsigned long long)(guest_mem_size(&vm->mem) >> 20));
out:
	state_writer_free(&w);
	return ret;
}

static int read_file(const char *path, uint8_t **out, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	struct stat st;
	uint8_t *buf;
	size_t got = 0;

	if (fd < 0)
		return log_set_error(-errno, "%s: %s", path, strerror(errno));
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return log_set_error(-EINVAL, "%s: not a regular file", path);
	}
	if ((uint64_t)st.st_size < HEADER_SIZE || (uint64_t)st.st_size > HEADER_SIZE + MAX_PAYLOAD) {
		close(fd);
		return log_set_error(-EINVAL, "%s: %llu bytes is no snapshot state file", path,
				     (unsigned long long)st.st_size);
	}
	buf = malloc((size_t)st.st_size);
	if (!buf) {
		close(fd);
		return log_set_error(-ENOMEM, "%s: out of memory", path);
	}
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	if (got != (size_t)st.st_size) {
		free(buf);
		return log_set_error(-EIO, "%s: could not read all of it", path);
	}
	*out = buf;
	*len = got;
	return 0;
}

/* The description section: the JSON into cfg, and the memory size it must come to. */
static int read_config(struct state_reader *r, const char *path, struct vm_config *cfg)
{
	uint16_t version;
	uint32_t json_len = 0;
	uint64_t mem_bytes = 0;
	char *json = NULL;
	int ret;

	if (state_open(r, SNAPSHOT_TAG_CONFIG, CONFIG_V1, &version) == 0) {
		state_get_u32(r, &json_len);
		if (!state_reader_status(r) && json_len > MAX_CONFIG)
			state_refuse(r, "a description of %u bytes", json_len);
		if (!state_reader_status(r) && !(json = calloc(1, (size_t)json_len + 1)))
			state_refuse(r, "out of memory");
		if (json)
			state_get_bytes(r, json, json_len);
		state_get_u64(r, &mem_bytes);
		state_close(r);
	}
	if (state_reader_status(r)) {
		free(json);
		return log_set_error(state_reader_status(r), "%s: %s", path, state_reader_error(r));
	}
	vm_config_init_defaults(cfg);
	cfg->restored = true;
	ret = config_json_document(cfg, NULL, NULL, json, json_len);
	free(json);
	if (ret) {
		char why[512];

		snprintf(why, sizeof(why), "%s", log_last_error());
		return log_set_error(ret, "%s: the VM's description: %s", path, why);
	}
	if (cfg->memory_mib << 20 != mem_bytes)
		return log_set_error(-EINVAL, "%s: %llu MiB of memory described, %llu bytes saved",
				     path, (unsigned long long)cfg->memory_mib,
				     (unsigned long long)mem_bytes);
	return 0;
}

int snapshot_open(struct snapshot *s, const char *state_path, struct vm_config *cfg)
{
	struct state_reader r;
	const uint8_t *h;
	uint32_t format, arch;
	uint64_t payload_len;
	char version[33];
	int ret;

	memset(s, 0, sizeof(*s));
	ret = read_file(state_path, &s->file, &s->len);
	if (ret)
		return ret;
	h = s->file;
	format = (uint32_t)get_le(h + 8, 4);
	arch = (uint32_t)get_le(h + 12, 4);
	memcpy(version, h + 16, 32);
	version[32] = '\0';
	for (char *c = version; *c; c++)
		if (*c < 0x20 || *c > 0x7e)
			*c = '?';
	payload_len = get_le(h + 48, 8);
	if (memcmp(h, MAGIC, 8) != 0) {
		ret = log_set_error(-EINVAL, "%s: not a skiff snapshot state file", state_path);
	} else if (format != SNAPSHOT_FORMAT) {
		ret = log_set_error(-EPROTONOSUPPORT,
				    "%s: snapshot format %u (skiff %s); this skiff (%s) reads "
				    "format %d",
				    state_path, format, version, SKIFF_VERSION, SNAPSHOT_FORMAT);
	} else if (arch != THIS_ARCH) {
		ret = log_set_error(-EINVAL, "%s: a snapshot of an %s VM; this skiff runs %s VMs",
				    state_path, arch_name(arch), arch_name(THIS_ARCH));
	} else if (payload_len != s->len - HEADER_SIZE) {
		ret = log_set_error(-EINVAL, "%s: %s: %zu bytes of state where its header says %llu",
				    state_path, payload_len > s->len - HEADER_SIZE ? "truncated"
										: "too long",
				    s->len - HEADER_SIZE, (unsigned long long)payload_len);
	} else if (get_le(h + 56, 4) !=
		   crc32(crc32(0, NULL, 0), h + HEADER_SIZE, (uInt)payload_len)) {
		ret = log_set_error(-EINVAL, "%s: corrupted (its CRC-32 does not match)",
				    state_path);
	}
	if (!ret) {
		s->payload = h + HEADER_SIZE;
		s->payload_len = payload_len;
		state_reader_init(&r, s->payload, s->payload_len);
		ret = read_config(&r, state_path, cfg);
		s->machine_at = r.pos;
	}
	if (ret)
		snapshot_close(s);
	return ret;
}

void snapshot_close(struct snapshot *s)
{
	free(s->file);
	memset(s, 0, sizeof(*s));
}

int snapshot_restore(struct vm *vm, const struct snapshot *s, const struct vm_config *cfg,
		     const char *mem_path)
{
	struct state_reader r;
	int fd, ret;

	fd = open(mem_path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return log_set_error(-errno, "%s: %s", mem_path, strerror(errno));
	{
		struct stat st;

		if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
			close(fd);
			return log_set_error(-EINVAL, "%s: not a regular file", mem_path);
		}
	}
	ret = vm_create_restored(vm, cfg, fd);
	close(fd); /* the mappings keep the file */
	if (ret) {
		char why[512];

		snprintf(why, sizeof(why), "%s",
			 log_last_error()[0] ? log_last_error() : strerror(-ret));
		return log_set_error(ret, "cannot rebuild the microVM: %s", why);
	}

	/* After the description, which snapshot_open read. */
	state_reader_init(&r, s->payload + s->machine_at, s->payload_len - s->machine_at);
	ret = arch_vm_state_restore(vm, &r);
	for (int i = 0; !ret && i < vm->nr_vcpus; i++)
		ret = arch_vcpu_state_restore(vm, &vm->vcpus[i], &r);
	if (!ret) {
		log_clear_last_error();
		ret = vm_devices_restore(&vm->devices, &r);
		if (ret && state_reader_status(&r))
			log_set_error(ret, "%s", state_reader_error(&r));
		else if (ret && !log_last_error()[0])
			log_set_error(ret, "a device refused its state: %s", strerror(-ret));
	}
	if (ret) {
		char why[512];

		snprintf(why, sizeof(why), "%s", log_last_error());
		vm_destroy(vm);
		return log_set_error(ret, "cannot restore the snapshot: %s", why);
	}
	return 0;
}
