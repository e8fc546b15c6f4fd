/* The Uffd memory backend of PUT /snapshot/load, as Firecracker documents it: guest memory is
 * anonymous and registered with a userfaultfd for missing pages, and a page-fault handler the
 * user runs fills it. skiff connects to the handler's UNIX socket and sends, in one message, the
 * userfaultfd (SCM_RIGHTS) and a JSON array describing each region of guest memory:
 *   [{"base_host_virt_addr": N, "size": N, "offset": N, "page_size": 4096,
 *     "page_size_kib": 4}, ...]
 * where offset is the region's place in the snapshot's memory file (regions follow each other in
 * guest-physical order, as snapshot_create writes them). page_size is in bytes (Firecracker 1.7
 * on), page_size_kib in KiB (earlier handlers); both are sent. */
#ifndef SKIFF_VMM_UFFD_H
#define SKIFF_VMM_UFFD_H

struct guest_mem;

/* Registers every region of `mem` with a new userfaultfd and hands it to the handler listening
 * on `socket_path`; skiff keeps no copy (a handler that dies then leaves no fault waiting on a
 * file nobody reads). 0, or -errno with a one-line reason as the thread's last error. */
int uffd_hand_over(struct guest_mem *mem, const char *socket_path);

#endif
