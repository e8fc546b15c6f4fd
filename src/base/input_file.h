/* The files skiff loads into a guest (kernels, initrds, firmware): opened close-on-exec and
 * non-blocking, so that a FIFO given as one fails instead of hanging, regular files only, and
 * read in full at given offsets, so that a file that shrinks while it is read fails rather than
 * leaving part of guest memory unwritten. */
#ifndef SKIFF_INPUT_FILE_H
#define SKIFF_INPUT_FILE_H

#include <stdint.h>

/* Opens `path`; stores its fd and its size at open. 0, or -errno (-EINVAL: not a regular file)
 * with one line naming `what` ("kernel", "initrd") and the path. */
int input_file_open(const char *what, const char *path, int *fd, uint64_t *size);

/* Reads exactly `len` bytes at `off` of the open file into `buf`. 0, or -errno (-EIO: the file
 * ends before them) with one line naming `what` and the path. */
int input_file_read(int fd, const char *what, const char *path, uint64_t off, void *buf,
		    uint64_t len);

#endif
