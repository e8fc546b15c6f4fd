/* Snapshots: a paused VM written to two files, and a new VM built from them (Firecracker's
 * PUT /snapshot/create and /snapshot/load; skiff run --restore).
 *
 * The memory file is guest RAM, its regions one after the other (arch_memory_layout's order),
 * nothing else: restore maps it private, so pages are read when the guest first touches them
 * and restore time does not grow with memory size.
 *
 * The state file is a header and a payload:
 *
 *   char magic[8]         "SKIFFSNP"
 *   u32  format           SNAPSHOT_FORMAT (2 since VMGenID joined the devices); another is refused
 *   u32  arch             1 x86_64, 2 arm64; another architecture's is refused
 *   char version[32]      the skiff that wrote it (NUL-padded), for the error messages
 *   u64  payload_length
 *   u32  payload_crc32    zlib's CRC-32 of the payload
 *   u32  reserved         0
 *
 * and the payload is sections of the saved-state layout (base/state.h): the VM's description
 * (SNAPSHOT_TAG_CONFIG: its GET /vm/config JSON and the memory size), the machine state KVM holds
 * (ARCH_STATE_VM, then ARCH_STATE_VCPU per vCPU: arch.h), then every device on the device list in
 * order (base/device.h). Little-endian throughout. A file that is short, long, of another format
 * or architecture, or whose CRC does not match is refused with one line before anything is
 * built; a section a device refuses fails the restore and the half-built VM is destroyed, never
 * run. */
#ifndef SKIFF_SNAPSHOT_H
#define SKIFF_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct state_writer;
struct vm;
struct vm_config;

#define SNAPSHOT_FORMAT	    2
#define SNAPSHOT_TAG_CONFIG 0x200

/* Writes the VM's state to state_path and its memory to mem_path (each created, or truncated,
 * mode 0600): all of it, or with `diff` (which needs track_dirty_pages) only the pages written
 * since the previous snapshot (or the start), each at its place in a sparse file of the whole
 * memory's length, which snapshot_merge_memory() applies onto the previous memory file. The VM must be paused (vm_pause): its devices finish what they took from their
 * rings first. Returns 0, or -errno with a one-line reason as the thread's last error; the VM
 * is unharmed either way. */
int snapshot_create(struct vm *vm, const char *state_path, const char *mem_path, bool diff);

/* The state file's whole content (header and payload, as above) of a paused VM, built in memory
 * (malloc'd, the caller frees it): what snapshot_create() writes and live migration sends. Saving
 * the devices first finishes what they took from their rings. 0, or -errno with a one-line
 * reason as the thread's last error. */
int snapshot_state_image(struct vm *vm, uint8_t **image, size_t *len);

/* The description section alone (SNAPSHOT_TAG_CONFIG), appended to w, and read back from
 * [buf, buf + len) (which must hold that section and nothing else) into cfg (cfg->restored
 * set); label names the source in the reasons. 0, or -errno with a one-line reason as the
 * thread's last error. */
int snapshot_save_description(struct vm *vm, struct state_writer *w);
int snapshot_read_description(const void *buf, size_t len, const char *label,
			      struct vm_config *cfg);

/* A state file read and checked. */
struct snapshot {
	uint8_t *file; /* the whole file */
	size_t len;
	const uint8_t *payload;
	size_t payload_len;
	size_t machine_at; /* where the payload's machine state starts, after the description */
};

/* Reads and checks state_path (header, CRC) and fills cfg, a fresh description, with the VM it
 * describes (cfg->restored set: nothing is booted). 0, or -errno with a one-line reason as the
 * thread's last error. */
int snapshot_open(struct snapshot *s, const char *state_path, struct vm_config *cfg);
/* The same for a state image already in memory (malloc'd; s owns it from here, even on
 * failure); state_path names it in the reasons. */
int snapshot_parse(struct snapshot *s, uint8_t *image, size_t len, const char *state_path,
		   struct vm_config *cfg);
void snapshot_close(struct snapshot *s);

/* Builds `vm` from cfg (as snapshot_open filled it, perhaps with taps renamed) with mem_path's
 * memory, and puts the state in, before any vCPU runs; clock_realtime: the guest's clock moves
 * on by the real time since the snapshot (else it goes on from where it stood). 0, or -errno with a one-line reason as
 * the thread's last error and nothing left built. */
int snapshot_restore(struct vm *vm, const struct snapshot *s, const struct vm_config *cfg,
		     const char *mem_path, bool clock_realtime);
/* The same with the memory as an open file (a snapshot's memory file, or the memfd a live
 * migration filled); the caller keeps and closes mem_fd. */
int snapshot_restore_fd(struct vm *vm, const struct snapshot *s, const struct vm_config *cfg,
			int mem_fd, bool clock_realtime);
/* The state alone, into a VM already built for it from the same description
 * (vm_create_restored() or vm_create_incoming()) whose vCPUs never ran: what
 * snapshot_restore_fd() does after building. 0, or -errno with a one-line reason as the
 * thread's last error and `vm` destroyed. */
int snapshot_restore_state(struct vm *vm, const struct snapshot *s, bool clock_realtime);
/* Whether the state's description section (the VM's JSON and memory size, as
 * snapshot_save_description() wrote it) is byte for byte desc[0, len). */
bool snapshot_description_is(const struct snapshot *s, const void *desc, size_t len);
/* The same with the Uffd backend: the page-fault handler listening on socket_path serves the
 * memory (vmm/uffd.h). */
int snapshot_restore_uffd(struct vm *vm, const struct snapshot *s, const struct vm_config *cfg,
			  const char *socket_path, bool clock_realtime);

/* Applies a Diff snapshot's memory file onto the memory file of the snapshot before it (in
 * place): every range the diff holds as data is copied; its holes are pages that did not
 * change. The two must be the same size. Then base_path goes with the Diff's state file. 0, or
 * -errno with a one-line reason as the thread's last error. */
int snapshot_merge_memory(const char *base_path, const char *diff_path);

#endif
