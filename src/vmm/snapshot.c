#include "vmm/snapshot.h"
#include "arch/arch.h"
#include "base/device.h"
#include "base/log.h"
#include "base/state.h"
#include "config/config_json.h"
#include "config/vm_config.h"
#include "version.h"
#include "vmm/dirty_log.h"
#include "vmm/vm.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>
#include <zlib.h>

#define MAGIC	     "SKIFFSNP"
#define HEADER_SIZE  (8 + 4 + 4 + 32 + 8 + 4 + 4)
#define CONFIG_V1    1
#define MAX_CONFIG   (1u << 20) /* the description's JSON: a few KiB in practice */
#define MAX_PAYLOAD  (64u << 20) /* state without memory: far below this */

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

/* Which pages of [p, p + len) are resident (mincore); a page never touched is not, and reads
 * as zeros. NULL when mincore cannot tell: then every page is looked at. */
static unsigned char *resident_pages(const uint8_t *p, size_t len)
{
	unsigned char *vec = malloc((len + PAGE - 1) / PAGE);

	if (vec && mincore((void *)p, len, vec) < 0) {
		free(vec);
		vec = NULL;
	}
	return vec;
}

/* Writes a memory region at the file's offset, leaving holes where whole pages are zero (a
 * guest's untouched memory, found without reading it where mincore says it was never
 * touched): the file is sparse and its length still the region's. */
static int write_sparse(int fd, const uint8_t *p, size_t len, const char *path)
{
	unsigned char *resident = resident_pages(p, len);
	size_t at = 0;
	int ret = 0;

#define ZERO_PAGE_AT(off) (len - (off) >= PAGE && ((resident && !(resident[(off) / PAGE] & 1)) || page_is_zero(p + (off))))
	while (at < len) {
		size_t run = at;

		while (run < len && ZERO_PAGE_AT(run))
			run += PAGE;
		if (run > at && lseek(fd, (off_t)(run - at), SEEK_CUR) < 0) {
			ret = log_set_error(-errno, "%s: %s", path, strerror(errno));
			break;
		}
		at = run;
		while (run < len && !ZERO_PAGE_AT(run))
			run += len - run >= PAGE ? PAGE : len - run;
		if (run > at && (ret = write_all(fd, p + at, run - at, path)))
			break;
		at = run;
	}
#undef ZERO_PAGE_AT
	free(resident);
	return ret;
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

int snapshot_save_description(struct vm *vm, struct state_writer *w)
{
	char *json = config_json_vm_config_dump(vm->cfg);

	if (!json)
		return log_set_error(-ENOMEM, "out of memory for the VM's description");
	state_begin(w, SNAPSHOT_TAG_CONFIG, CONFIG_V1);
	state_put_u32(w, (uint32_t)strlen(json));
	state_put_bytes(w, json, strlen(json));
	state_put_u64(w, guest_mem_size(&vm->mem));
	state_end(w);
	free(json);
	return 0;
}

static int save_state(struct vm *vm, struct state_writer *w)
{
	int ret = snapshot_save_description(vm, w);

	if (!ret)
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

/* A Diff memory file: only the dirty pages, each at its place (written even when zero, so that a
 * merge finds it as data), holes elsewhere; the file has the whole memory's length. */
static int write_diff(const char *path, struct vm *vm, uint64_t **maps, uint64_t *pages_out)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	uint64_t offset = 0, pages = 0;
	int ret = 0;

	if (fd < 0)
		return log_set_error(-errno, "%s: %s", path, strerror(errno));
	for (int i = 0; !ret && i < vm->mem.nr_regions; i++) {
		const struct guest_region *r = &vm->mem.regions[i];

		for (uint64_t pg = 0; !ret && pg < r->size / GUEST_PAGE_SIZE; pg++) {
			uint64_t at = pg * GUEST_PAGE_SIZE;

			if (!dirty_log_test(maps, i, pg))
				continue;
			if (pwrite(fd, r->hva + at, GUEST_PAGE_SIZE, (off_t)(offset + at)) !=
			    GUEST_PAGE_SIZE)
				ret = log_set_error(errno ? -errno : -EIO, "%s: %s", path,
						    errno ? strerror(errno) : "short write");
			pages++;
		}
		offset += r->size;
	}
	if (!ret && ftruncate(fd, (off_t)offset) < 0)
		ret = log_set_error(-errno, "%s: %s", path, strerror(errno));
	if (!ret && fsync(fd) < 0)
		ret = log_set_error(-errno, "%s: %s", path, strerror(errno));
	close(fd);
	*pages_out = pages;
	return ret;
}

int snapshot_state_image(struct vm *vm, uint8_t **image, size_t *len)
{
	struct state_writer w;
	uint8_t *out;
	int ret;

	log_clear_last_error();
	state_writer_init(&w);
	ret = save_state(vm, &w);
	if (!ret && w.len > MAX_PAYLOAD)
		ret = log_set_error(-EFBIG, "the VM's state is %zu bytes, more than a state file "
					    "holds",
				    w.len);
	if (!ret && !(out = malloc(HEADER_SIZE + w.len)))
		ret = log_set_error(-ENOMEM, "out of memory for the VM's state");
	if (ret) {
		state_writer_free(&w);
		return ret;
	}
	memset(out, 0, HEADER_SIZE);
	memcpy(out, MAGIC, 8);
	put_le(out + 8, SNAPSHOT_FORMAT, 4);
	put_le(out + 12, arch_id(), 4);
	strncpy((char *)out + 16, SKIFF_VERSION, 31);
	put_le(out + 48, w.len, 8);
	put_le(out + 56, crc32(crc32(0, NULL, 0), w.buf, (uInt)w.len), 4);
	memcpy(out + HEADER_SIZE, w.buf, w.len);
	*image = out;
	*len = HEADER_SIZE + w.len;
	state_writer_free(&w);
	return 0;
}

int snapshot_create(struct vm *vm, const char *state_path, const char *mem_path, bool diff)
{
	struct iovec parts[GUEST_MEM_MAX_REGIONS] = {{0}};
	uint64_t **dirty = NULL, diff_pages = 0;
	uint8_t *image = NULL;
	size_t image_len = 0;
	int ret;

	if (!vm_is_paused(vm))
		return log_set_error(-EINVAL, "the microVM must be paused to take a snapshot");
	if (diff && !vm->cfg->track_dirty_pages)
		return log_set_error(-EINVAL, "a Diff snapshot needs dirty-page tracking from the "
					      "start (machine-config track_dirty_pages: true)");
	if (!strcmp(state_path, mem_path))
		return log_set_error(-EINVAL, "the snapshot and memory files are the same path");
	/* From the devices' state to the memory file, no device may work (base/device.h). */
	ret = vm_devices_hold(&vm->devices, true);
	if (ret)
		return ret;
	ret = snapshot_state_image(vm, &image, &image_len);
	if (ret)
		goto out;

	/* With tracking, every snapshot starts the next Diff's count afresh. */
	if (vm->cfg->track_dirty_pages && !(dirty = dirty_log_take(vm))) {
		ret = -EIO;
		goto out;
	}
	if (diff) {
		ret = write_diff(mem_path, vm, dirty, &diff_pages);
	} else {
		for (int i = 0; i < vm->mem.nr_regions; i++)
			parts[i] = (struct iovec){vm->mem.regions[i].hva, vm->mem.regions[i].size};
		ret = write_file(mem_path, parts, vm->mem.nr_regions, true);
	}
	if (ret)
		goto out;
	parts[0] = (struct iovec){image, image_len};
	ret = write_file(state_path, parts, 1, false);
	if (!ret && diff)
		log_info("snapshot: state in %s (%zu bytes), %llu pages written since the last "
			 "snapshot in %s",
			 state_path, image_len, (unsigned long long)diff_pages, mem_path);
	else if (!ret)
		log_info("snapshot: state in %s (%zu bytes), memory in %s (%llu MiB)", state_path,
			 image_len, mem_path, (unsigned long long)(guest_mem_size(&vm->mem) >> 20));
out:
	/* A snapshot that failed leaves the pages dirty for the next one. */
	dirty_log_free(vm, dirty, ret != 0);
	free(image);
	if (vm_devices_hold(&vm->devices, false) && !ret)
		ret = log_set_error(-EIO, "snapshot: the devices could not be let go after it");
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

int snapshot_parse(struct snapshot *s, uint8_t *image, size_t len, const char *state_path,
		   struct vm_config *cfg)
{
	struct state_reader r;
	const uint8_t *h;
	uint32_t format, arch;
	uint64_t payload_len;
	char version[33];
	int ret;

	memset(s, 0, sizeof(*s));
	s->file = image;
	s->len = len;
	h = s->file;
	ret = 0;
	if (len < HEADER_SIZE || len > HEADER_SIZE + MAX_PAYLOAD) {
		snapshot_close(s);
		return log_set_error(-EINVAL, "%s: %zu bytes is no snapshot state", state_path,
				     len);
	}
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
	} else if (arch != arch_id()) {
		ret = log_set_error(-EINVAL, "%s: a snapshot of an %s VM; this skiff runs %s VMs",
				    state_path, arch_id_name(arch), arch_id_name(arch_id()));
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

int snapshot_open(struct snapshot *s, const char *state_path, struct vm_config *cfg)
{
	uint8_t *image = NULL;
	size_t len = 0;
	int ret = read_file(state_path, &image, &len);

	if (ret) {
		memset(s, 0, sizeof(*s));
		return ret;
	}
	return snapshot_parse(s, image, len, state_path, cfg);
}

int snapshot_read_description(const void *buf, size_t len, const char *label,
			      struct vm_config *cfg)
{
	struct state_reader r;
	int ret;

	state_reader_init(&r, buf, len);
	ret = read_config(&r, label, cfg);
	if (!ret && !state_reader_at_end(&r))
		ret = log_set_error(-EINVAL, "%s: bytes after the VM's description", label);
	return ret;
}

void snapshot_close(struct snapshot *s)
{
	free(s->file);
	memset(s, 0, sizeof(*s));
}

bool snapshot_description_is(const struct snapshot *s, const void *desc, size_t len)
{
	return s->payload && len == s->machine_at && memcmp(s->payload, desc, len) == 0;
}

int snapshot_restore_state(struct vm *vm, const struct snapshot *s, bool clock_realtime)
{
	struct state_reader r;
	int ret;

	vm->clock_realtime = clock_realtime;
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

/* The machine's state into a VM just built for it (ret: how that building went). */
static int restore_into(struct vm *vm, const struct snapshot *s, bool clock_realtime, int ret)
{
	if (ret) {
		char why[512];

		snprintf(why, sizeof(why), "%s",
			 log_last_error()[0] ? log_last_error() : strerror(-ret));
		return log_set_error(ret, "cannot rebuild the microVM: %s", why);
	}
	return snapshot_restore_state(vm, s, clock_realtime);
}

int snapshot_restore_fd(struct vm *vm, const struct snapshot *s, const struct vm_config *cfg,
			int mem_fd, bool clock_realtime)
{
	return restore_into(vm, s, clock_realtime, vm_create_restored(vm, cfg, mem_fd));
}

int snapshot_restore_uffd(struct vm *vm, const struct snapshot *s, const struct vm_config *cfg,
			  const char *socket_path, bool clock_realtime)
{
	return restore_into(vm, s, clock_realtime,
			    vm_create_restored_uffd(vm, cfg, socket_path));
}

int snapshot_restore(struct vm *vm, const struct snapshot *s, const struct vm_config *cfg,
		     const char *mem_path, bool clock_realtime)
{
	struct stat st;
	int fd, ret;

	fd = open(mem_path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return log_set_error(-errno, "%s: %s", mem_path, strerror(errno));
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return log_set_error(-EINVAL, "%s: not a regular file", mem_path);
	}
	ret = snapshot_restore_fd(vm, s, cfg, fd, clock_realtime);
	close(fd); /* the mappings keep the file */
	return ret;
}

int snapshot_merge_memory(const char *base_path, const char *diff_path)
{
	int diff = open(diff_path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	int base = -1, ret = 0;
	struct stat ds, bs;
	uint64_t merged = 0;
	off_t at = 0;
	static uint8_t buf[1 << 20];

	if (diff < 0)
		return log_set_error(-errno, "%s: %s", diff_path, strerror(errno));
	base = open(base_path, O_RDWR | O_CLOEXEC | O_NONBLOCK);
	if (base < 0) {
		ret = log_set_error(-errno, "%s: %s", base_path, strerror(errno));
		goto out;
	}
	if (fstat(diff, &ds) < 0 || fstat(base, &bs) < 0 || !S_ISREG(ds.st_mode) ||
	    !S_ISREG(bs.st_mode)) {
		ret = log_set_error(-EINVAL, "%s and %s must be regular files", base_path,
				    diff_path);
		goto out;
	}
	if (ds.st_dev == bs.st_dev && ds.st_ino == bs.st_ino) {
		ret = log_set_error(-EINVAL, "%s and %s are the same file", base_path, diff_path);
		goto out;
	}
	if (ds.st_size != bs.st_size) {
		ret = log_set_error(-EINVAL, "%s is %lld bytes and %s %lld: not the same VM's memory",
				    base_path, (long long)bs.st_size, diff_path,
				    (long long)ds.st_size);
		goto out;
	}
	/* A sparse file whose holes its filesystem does not report would look all data. */
	if ((uint64_t)ds.st_blocks * 512 < (uint64_t)ds.st_size &&
	    lseek(diff, 0, SEEK_HOLE) >= ds.st_size) {
		ret = log_set_error(-EOPNOTSUPP, "%s: its filesystem does not report holes "
						 "(SEEK_HOLE): cannot tell the written pages",
				    diff_path);
		goto out;
	}
	for (;;) {
		off_t data = lseek(diff, at, SEEK_DATA), hole;

		if (data < 0 && errno == ENXIO)
			break;
		if (data < 0) {
			ret = log_set_error(-errno, "%s: %s", diff_path, strerror(errno));
			goto out;
		}
		hole = lseek(diff, data, SEEK_HOLE);
		if (hole < 0)
			hole = ds.st_size;
		for (at = data; at < hole;) {
			size_t n = (size_t)(hole - at) < sizeof(buf) ? (size_t)(hole - at) : sizeof(buf);
			ssize_t got = pread(diff, buf, n, at);

			if (got <= 0 || pwrite(base, buf, (size_t)got, at) != got) {
				ret = log_set_error(errno ? -errno : -EIO, "merging %s into %s: %s",
						    diff_path, base_path,
						    errno ? strerror(errno) : "short read or write");
				goto out;
			}
			at += got;
			merged += (uint64_t)got;
		}
	}
	if (fsync(base) < 0)
		ret = log_set_error(-errno, "%s: %s", base_path, strerror(errno));
	else
		log_info("snapshot: merged %llu KiB of %s into %s", (unsigned long long)(merged >> 10),
			 diff_path, base_path);
out:
	if (base >= 0)
		close(base);
	close(diff);
	return ret;
}
