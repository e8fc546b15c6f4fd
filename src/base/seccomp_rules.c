#include "base/seccomp_rules.h"
#include "base/thread.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <linux/if_tun.h>
#include <linux/io_uring.h>
#include <linux/kvm.h>
#include <linux/userfaultfd.h>
#include <linux/vhost.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <termios.h>

#define MAIN	ROLE_BIT(THREAD_MAIN)
#define VCPU	ROLE_BIT(THREAD_VCPU)
#define WORKER	ROLE_BIT(THREAD_DEVICE_WORKER)
/* The migration thread (vmm/migration.h) is started by the API thread and runs under its filter
 * too; what it does is what the API thread's requests do (pause, save and build a VM), plus its
 * socket: it shares the API's list, and the API's list has its TCP sockets. */
#define API	(ROLE_BIT(THREAD_API) | ROLE_BIT(THREAD_MIGRATION))
#define METRICS ROLE_BIT(THREAD_METRICS)
#define GDB_ROLE ROLE_BIT(THREAD_GDB)
#define ALL	(MAIN | VCPU | WORKER | API | METRICS | GDB_ROLE)
/* The GDB stub's thread (vmm/gdb_stub.h) is started by the main thread in vm_run(), after the
 * main thread's own filter is on: it runs under both, so what it calls the main thread's filter
 * allows too (as for the vCPUs). */
#define GDB (GDB_ROLE | MAIN)

/* Threads that create others: the main thread (the vCPUs, device workers and metrics flusher on
 * the command line; the vCPUs after its filter is on) and the API thread (device workers and the
 * metrics flusher when InstanceStart builds the VM). */
#define CREATORS (MAIN | API)

const struct seccomp_call seccomp_calls[] = {
    /* Every thread: its own memory, locks, time, logging, its end, and the SIGSYS handler's
     * return path. */
    {"read", ALL},
    {"write", ALL},
    {"writev", ALL},
    {"close", ALL},
    {"futex", ALL},
    {"brk", ALL},
    {"mmap", ALL},
    {"munmap", ALL},
    {"mprotect", ALL},
    {"madvise", ALL},
    {"mremap", ALL},
    {"clock_gettime", ALL},
    {"clock_nanosleep", ALL},
    {"nanosleep", ALL},
    {"gettid", ALL},
    {"getpid", ALL},
    {"tgkill", ALL},
    {"sched_yield", ALL},
    {"rt_sigprocmask", ALL},
    {"rt_sigreturn", ALL},
    {"restart_syscall", ALL},
    {"fstat", ALL},
    {"newfstatat", ALL},
    {"lseek", ALL},
    {"exit", ALL},
    {"exit_group", ALL},
    {"sigaltstack", ALL}, /* ASan builds set and clear a thread's signal stack */
    {"ioctl", ALL},	  /* level 2: the requests below */

    /* Starting threads (glibc's pthread_create and what a new thread runs before its own
     * filter is on). */
    {"clone", CREATORS},
    {"clone3", CREATORS},
    {"set_robust_list", CREATORS},
    {"rseq", CREATORS},
    /* Level 2: a thread reading its name (every role), a new one naming itself and putting on
     * its filter (no_new_privs; its creator's filter applies until then). */
    {"prctl", ALL},
    /* A new thread putting its own filter on (under its creator's): filters only add up, a
     * thread can narrow what it may do, never widen it. */
    {"seccomp", CREATORS},

    /* Event loops: epoll, eventfds (kicks, interrupts, wake-ups), timers. */
    {"epoll_wait", MAIN | WORKER | API},
    {"epoll_pwait", MAIN | WORKER | API},
    {"epoll_ctl", MAIN | WORKER | API},
    {"epoll_create1", MAIN | API},
    {"eventfd2", MAIN | API},
    {"timerfd_create", MAIN | API},
    {"timerfd_settime", MAIN | WORKER | API},
    {"ppoll", MAIN | WORKER | API | GDB},
    {"poll", MAIN | WORKER | API | GDB},

    /* The main thread: termination signals, the vCPU kick handler, the terminal, teardown. */
    {"signalfd4", MAIN},
    {"rt_sigaction", MAIN},
    {"getrusage", MAIN},
    /* How much guest memory is resident: at the end, and in every metrics line. */
    {"mincore", MAIN | API | METRICS},
    {"unlink", MAIN | API | GDB},
    {"unlinkat", MAIN | API | GDB},

    /* Device workers: disk I/O (io_uring and the synchronous fallback), tap, the console. */
    {"readv", WORKER | API},
    {"preadv", WORKER | API},
    {"pwritev", WORKER | API},
    {"pread64", ALL}, /* also the metrics' /proc/self/statm */
    {"pwrite64", WORKER | API},
    /* ...and the main thread's teardown, which flushes the disks and drains their rings. */
    {"fdatasync", MAIN | WORKER | API},
    {"fsync", MAIN | WORKER | API},
    {"fallocate", WORKER | API},
    {"ftruncate", API}, /* a snapshot's sparse memory file */
    {"userfaultfd", API}, /* PUT /snapshot/load's Uffd backend (vmm/uffd.h) */
    {"io_uring_enter", MAIN | WORKER | API},
    {"getrandom", WORKER | API}, /* virtio-rng's entropy */
    /* PATCH /drives swaps a disk's file on its worker: it opens the new one there. */
    {"openat", WORKER | API},

    /* virtio-fs (vhost-user): the worker speaks to the backend (replies, fds with SCM_RIGHTS,
     * a peek for its socket's end), reaps a virtiofsd skiff started when it dies; whoever
     * destroys the VM stops that virtiofsd. Building the VM (main before its filter, or the
     * API's InstanceStart) maps guest memory as memfds and connects to the backend. */
    {"sendmsg", WORKER},
    {"recvmsg", WORKER},
    {"recvfrom", WORKER},
    {"wait4", MAIN | WORKER | API},
    {"kill", MAIN | API},
    {"rmdir", MAIN | API},
    {"memfd_create", API},
    {"ftruncate", API},

    /* The API server: its socket and clients; InstanceStart builds the VM (opens the kernel,
     * the disks, the tap device, /dev/kvm, maps guest memory, starts the device workers);
     * PUT /logger and /metrics open their files. */
    {"socket", API | WORKER | GDB}, /* level 2: AF_UNIX; AF_INET(6) for the GDB stub */
    {"bind", API | GDB},
    {"listen", API | GDB},
    {"connect", API | WORKER}, /* and virtio-vsock: the guest's connections to <uds>_PORT */
    {"accept4", API | WORKER | GDB}, /* and virtio-vsock: clients of its unix socket */
    {"getsockopt", API},
    {"setsockopt", API | GDB},
    {"recvfrom", API | GDB},
    {"sendto", API | GDB},
    {"recvmsg", API},
    {"sendmsg", API},
    {"shutdown", API | WORKER | GDB},
    {"fchmod", API},
    {"umask", API},
    {"open", API},
    {"stat", API},
    {"lstat", API | GDB}, /* and the GDB stub's look for a stale socket at its path */
    {"statfs", API},
    {"fstatfs", API},
    {"access", API},
    {"faccessat", API},
    {"faccessat2", API},
    {"readlink", API},
    {"readlinkat", API},
    {"fcntl", WORKER | API},
    {"geteuid", API}, /* SO_PEERCRED: only skiff's own uid or root may drive it */
    {"getuid", API},
    {"getegid", API},
    {"getgid", API},
    {"sysinfo", API},
    {"uname", API},
    {"prlimit64", API},
    {"sched_getaffinity", API},
    {"io_uring_setup", API},
    /* level 2: the operations below (IO_URING_REG) */
    {"io_uring_register", API | WORKER},

#ifdef __SANITIZE_ADDRESS__
    /* ASan builds (make SANITIZE=1, for the tests only): LeakSanitizer's check as the main
     * thread ends stops every thread from a helper it clones, and scans their memory. */
    {"sched_getaffinity", MAIN},
    {"clone", MAIN},
    {"wait4", MAIN},
    {"ptrace", MAIN},
    {"open", MAIN},
    {"openat", MAIN},
    {"getdents", MAIN},
    {"getdents64", MAIN},
    {"readlink", MAIN},
    {"readlinkat", MAIN},
    {"getppid", MAIN},
    {"kill", MAIN},
#endif
};
const size_t seccomp_nr_calls = sizeof(seccomp_calls) / sizeof(seccomp_calls[0]);

/* clang-format off */
#define IOCTL(req, roles) {"ioctl", 1, (unsigned long)(req), #req, roles}
#define FCNTL(cmd, roles) {"fcntl", 1, (unsigned long)(cmd), #cmd, roles}
#define SOCKET(dom, roles) {"socket", 0, (unsigned long)(dom), #dom, roles}
#define PRCTL(op, roles) {"prctl", 0, (unsigned long)(op), #op, roles}
#define IO_URING_REG(op, roles) {"io_uring_register", 1, (unsigned long)(op), #op, roles}
/* clang-format on */

/* The vCPU's requests at run time: its loop, and what a guest's port or MMIO access may do on
 * its thread (interrupts, virtio-pci's MSI-X routes and notification eventfds); the main thread
 * starts the vCPUs after its filter is on, so it allows them too. */
#define RUN (VCPU | MAIN | API)

const struct seccomp_arg_value seccomp_arg_values[] = {
    /* A disk's io_uring (virtio/blk_io.h): made with its completion eventfd where the VM is
     * built; enabled by the device's worker, which becomes its one submitter and registers the
     * image as a fixed file while the device is live (again after a swap). The API thread may
     * do what the workers it starts do (they run under its filter too). */
    IO_URING_REG(IORING_REGISTER_EVENTFD, API),
    IO_URING_REG(IORING_REGISTER_ENABLE_RINGS, API | WORKER),
    IO_URING_REG(IORING_REGISTER_FILES, API | WORKER),
    IO_URING_REG(IORING_UNREGISTER_FILES, API | WORKER),

    /* The terminal: stdio's isatty, raw mode and its restoring (the SIGSYS handler restores it
     * too, from whichever thread broke the rules). */
    IOCTL(TCGETS, ALL),
    IOCTL(TCSETS, ALL),
    IOCTL(TCSETSW, ALL),
    IOCTL(TCSETSF, ALL),
    IOCTL(TIOCGWINSZ, MAIN | API),

    IOCTL(KVM_RUN, RUN),
    IOCTL(KVM_IRQ_LINE, RUN | WORKER),
    IOCTL(KVM_IRQFD, RUN),
    IOCTL(KVM_IOEVENTFD, RUN),
    IOCTL(KVM_SET_GSI_ROUTING, RUN),
    IOCTL(KVM_GET_MP_STATE, RUN),
    /* The UART's transmit register batched or not as the guest's IER says (vmm/coalesced.h),
     * at a guest's write, a reset or a restore. */
    IOCTL(KVM_REGISTER_COALESCED_MMIO, RUN),
    IOCTL(KVM_UNREGISTER_COALESCED_MMIO, RUN),
    IOCTL(KVM_GET_REGS, RUN | GDB),
    IOCTL(KVM_GET_SREGS, RUN | GDB),
#ifdef __aarch64__
    IOCTL(KVM_GET_ONE_REG, RUN | GDB),
    IOCTL(KVM_SET_ONE_REG, RUN | GDB),
#endif

    /* The GDB stub (vmm/gdb_stub.h): a parked vCPU's registers, breakpoints and single-step. */
    IOCTL(KVM_SET_GUEST_DEBUG, GDB),
#ifdef __x86_64__
    IOCTL(KVM_GET_FPU, GDB),
#endif

    /* Building the VM, on the API thread (InstanceStart); pausing and resuming it. */
    IOCTL(KVM_GET_API_VERSION, API),
    IOCTL(KVM_GET_VCPU_MMAP_SIZE, API),
    IOCTL(KVM_CHECK_EXTENSION, API),
    IOCTL(KVM_CREATE_VM, API),
    IOCTL(KVM_CREATE_VCPU, API),
    IOCTL(KVM_SET_USER_MEMORY_REGION, API),
    IOCTL(KVM_CREATE_DEVICE, API),
    IOCTL(KVM_SET_DEVICE_ATTR, API),
    IOCTL(KVM_GET_DEVICE_ATTR, API),
    IOCTL(KVM_HAS_DEVICE_ATTR, API),
    IOCTL(KVM_SET_REGS, API | GDB),
    IOCTL(KVM_SET_SREGS, API | GDB),
    IOCTL(KVM_SET_MP_STATE, API),
#ifdef __x86_64__
    IOCTL(KVM_CREATE_IRQCHIP, API),
    IOCTL(KVM_CREATE_PIT2, API),
    IOCTL(KVM_SET_TSS_ADDR, API),
    IOCTL(KVM_SET_IDENTITY_MAP_ADDR, API),
    IOCTL(KVM_GET_SUPPORTED_CPUID, API),
    IOCTL(KVM_SET_CPUID2, API),
    IOCTL(KVM_GET_MSR_INDEX_LIST, API),
    IOCTL(KVM_GET_MSRS, API),
    IOCTL(KVM_SET_MSRS, API),
    IOCTL(KVM_GET_LAPIC, API),
    IOCTL(KVM_SET_LAPIC, API),
    IOCTL(KVM_SET_FPU, API | GDB),
    IOCTL(KVM_GET_CLOCK, API),
    IOCTL(KVM_SET_CLOCK, API),
    /* Snapshots (PUT /snapshot/create and /snapshot/load): the rest of the machine's state. */
    IOCTL(KVM_GET_XSAVE, API),
    IOCTL(KVM_GET_XSAVE2, API),
    IOCTL(KVM_SET_XSAVE, API),
    IOCTL(KVM_GET_FPU, API),
    IOCTL(KVM_GET_XCRS, API),
    IOCTL(KVM_SET_XCRS, API),
    IOCTL(KVM_GET_VCPU_EVENTS, API),
    IOCTL(KVM_SET_VCPU_EVENTS, API),
    IOCTL(KVM_GET_DEBUGREGS, API),
    IOCTL(KVM_SET_DEBUGREGS, API),
    IOCTL(KVM_GET_IRQCHIP, API),
    IOCTL(KVM_SET_IRQCHIP, API),
    IOCTL(KVM_GET_PIT2, API),
    IOCTL(KVM_SET_PIT2, API),
#endif
    IOCTL(KVM_GET_DIRTY_LOG, API), /* Diff snapshots, live migration */
    IOCTL(UFFDIO_API, API),	   /* the Uffd backend's userfaultfd, before it is sent */
    IOCTL(UFFDIO_REGISTER, API),
#ifdef __aarch64__
    IOCTL(KVM_ARM_PREFERRED_TARGET, API),
    IOCTL(KVM_ARM_VCPU_INIT, API),
    /* Snapshots: every register KVM lists for a vCPU, its pending SError (Diffs: above). */
    IOCTL(KVM_GET_REG_LIST, API),
    IOCTL(KVM_GET_VCPU_EVENTS, API),
    IOCTL(KVM_SET_VCPU_EVENTS, API),
#endif
    IOCTL(TUNSETIFF, API),
    IOCTL(TUNSETVNETHDRSZ, API),
    IOCTL(TUNSETOFFLOAD, API | WORKER), /* the offloads the guest's driver accepted */
    IOCTL(TUNSETQUEUE, API | WORKER),	/* multiqueue: pairs in use (VQ_PAIRS_SET) */
    IOCTL(BLKGETSIZE64, API | WORKER),	/* and a swapped disk's size */
    /* vhost=on interfaces (virtio/vhost_net.h): /dev/vhost-net is opened and owned where the VM
     * is built; the worker hands it the rings at the driver's DRIVER_OK and takes them back at
     * a reset or a snapshot. The API thread's filter has them too: a worker it starts (a VM
     * built by InstanceStart) runs under that filter as well as its own. */
    IOCTL(VHOST_SET_OWNER, API),
    IOCTL(VHOST_GET_FEATURES, API),
    IOCTL(VHOST_SET_FEATURES, WORKER | API),
    IOCTL(VHOST_SET_MEM_TABLE, WORKER | API),
    IOCTL(VHOST_SET_VRING_NUM, WORKER | API),
    IOCTL(VHOST_SET_VRING_BASE, WORKER | API),
    IOCTL(VHOST_GET_VRING_BASE, WORKER | API),
    IOCTL(VHOST_SET_VRING_ADDR, WORKER | API),
    IOCTL(VHOST_SET_VRING_KICK, WORKER | API),
    IOCTL(VHOST_SET_VRING_CALL, WORKER | API),
    IOCTL(VHOST_SET_VRING_ERR, WORKER | API),
    IOCTL(VHOST_NET_SET_BACKEND, WORKER | API),

    /* Disks: blocking mode for the image, its lock (F_OFD_SETLK) */
    FCNTL(F_GETFL, WORKER | API),
    FCNTL(F_SETFL, WORKER | API),
    FCNTL(F_GETFD, API),
    FCNTL(F_SETFD, API),
    FCNTL(F_OFD_SETLK, API | WORKER),
    FCNTL(F_OFD_GETLK, API),
    FCNTL(F_DUPFD_CLOEXEC, API),

    PRCTL(PR_GET_NAME, ALL),
    PRCTL(PR_SET_NAME, CREATORS),
    PRCTL(PR_SET_NO_NEW_PRIVS, CREATORS),
    PRCTL(PR_SET_SECCOMP, CREATORS),
#ifdef __SANITIZE_ADDRESS__
    PRCTL(PR_GET_DUMPABLE, MAIN), /* LeakSanitizer, as above */
    PRCTL(PR_SET_DUMPABLE, MAIN),
    PRCTL(PR_SET_PTRACER, MAIN),
    PRCTL(PR_SET_PDEATHSIG, MAIN),
#endif

    /* The API socket (and the look for a stale one at its path); virtio-vsock's; the GDB
     * stub's. */
    SOCKET(AF_UNIX, API | WORKER | GDB),
    SOCKET(AF_INET, GDB | API), /* and live migration's tcp: URLs */
    SOCKET(AF_INET6, GDB | API),
};
const size_t seccomp_nr_arg_values = sizeof(seccomp_arg_values) / sizeof(seccomp_arg_values[0]);
