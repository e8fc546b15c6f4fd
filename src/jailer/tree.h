/* The jail's directory tree on the host: <chroot-base>/<exec name>/<id>/root, and the program
 * in it as root/<exec name>. Existing directories are kept (a jail prepared in advance with the
 * guest's kernel and disks is the normal case); every component below the chroot base must be a
 * real directory, never a symlink (so a prepared jail cannot point the jailer elsewhere). The
 * program is hard-linked in when the file system allows it, else copied (mode kept, set-id bits
 * dropped). The root directory is given to uid:gid (the program may create its API socket
 * there); the directories above it stay as they are (root's, 0755 when created). */
#ifndef SKIFF_JAILER_TREE_H
#define SKIFF_JAILER_TREE_H

#include <stddef.h>

#include "jailer/args.h"

/* Builds the tree and writes the root directory's path into root (len bytes). 0 or -errno with
 * the reason recorded (jail_fail). */
int jail_tree_build(const struct jail_args *a, char *root, size_t len);

#endif
