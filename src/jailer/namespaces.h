/* Namespaces: the jail's own mount namespace with the jail as its root (pivot_root, the host's
 * tree unmounted, so nothing outside the jail stays reachable), and joining a network
 * namespace. Each returns 0 or -errno with the reason recorded (jail_fail). */
#ifndef SKIFF_JAILER_NAMESPACES_H
#define SKIFF_JAILER_NAMESPACES_H

/* unshare(CLONE_NEWNS), every mount private, root bind-mounted on itself, pivot_root into it,
 * the old root detached and removed, chroot("."), cwd "/". On an initramfs root, which
 * pivot_root cannot move, the jail's mount is moved over / and chrooted into instead. */
int jail_enter_mount_ns(const char *root);

/* setns() into the network namespace behind fd (opened from --netns). */
int jail_join_netns(int fd, const char *path);

#endif
