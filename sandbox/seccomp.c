/* seccomp.c — the system-call allow-list of the script's process.
 *
 * Installed last, just before the payload runs, after no_new_privs. Anything not listed here
 * fails with ENOSYS (what a kernel without the call would say, so libraries fall back
 * gracefully); a few calls that are classic escape or exploit routes are listed explicitly
 * with EPERM, so the intent is on record and a probe can tell them apart. Calls from any other
 * architecture kill the process, and so do x32-ABI calls (the x86_64 numbers with bit 30 set),
 * which libseccomp's x86_64 filter treats as a foreign architecture: both are how filters
 * written for one syscall table get bypassed.
 *
 * The list is what CPython, numpy/OpenBLAS, pandas, scipy, scikit-learn, matplotlib,
 * subprocess, multiprocessing, threads and asyncio use (found with strace -f over the test
 * suites), grouped by purpose, each with its reason. Calls that need arguments checked are
 * below the table. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/sched.h>
#include <sched.h>
#include <seccomp.h>
#include <stddef.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <termios.h>
#include <unistd.h>

#include "internal.h"
#include "util.h"

struct rule {
        const char *name; /* resolved by name: a call this architecture lacks is skipped */
        const char *why;
};

static const struct rule allowed[] = {
        /* descriptors and plain I/O */
        { "read", "I/O" }, { "write", "I/O" }, { "readv", "I/O" }, { "writev", "I/O" },
        { "pread64", "I/O at an offset (sqlite, numpy.fromfile)" }, { "pwrite64", "I/O at an offset" },
        { "preadv", "I/O" }, { "pwritev", "I/O" },
        { "lseek", "file position" }, { "close", "descriptors" }, { "close_range", "subprocess closes inherited fds" },
        { "dup", "descriptors" }, { "dup2", "descriptors" }, { "dup3", "descriptors" },
        { "fcntl", "descriptor flags, locks" }, { "flock", "advisory locks (sqlite, matplotlib cache)" },
        { "fsync", "durability calls are harmless on tmpfs" }, { "fdatasync", "as fsync" },
        { "sync_file_range", "as fsync" }, { "ftruncate", "resize own files in /tmp" }, { "truncate", "as ftruncate" },
        { "fallocate", "preallocate in /tmp (bounded by its size)" },
        { "readahead", "read-ahead hints" }, { "sendfile", "shutil.copyfile" }, { "copy_file_range", "shutil.copyfile" },
        { "splice", "pipe I/O" }, { "tee", "pipe I/O" },
        { "pipe", "pipes" }, { "pipe2", "pipes (subprocess, multiprocessing)" },
        { "memfd_create", "anonymous files (multiprocessing heaps, libffi)" },

        /* paths: the root is read-only and only /tmp is writable, so these are safe to allow */
        { "open", "open files" }, { "openat", "open files" }, { "openat2", "open files" }, { "creat", "open files" },
        { "stat", "metadata" }, { "fstat", "metadata" }, { "lstat", "metadata" }, { "newfstatat", "metadata" },
        { "statx", "metadata" }, { "statfs", "file system info" }, { "fstatfs", "file system info" },
        { "access", "permission checks" }, { "faccessat", "permission checks" }, { "faccessat2", "permission checks" },
        { "readlink", "symlinks" }, { "readlinkat", "symlinks" }, { "getdents", "list directories" },
        { "getdents64", "list directories" }, { "getcwd", "working directory" }, { "chdir", "working directory" },
        { "fchdir", "working directory" }, { "mkdir", "make directories in /tmp" }, { "mkdirat", "as mkdir" },
        { "rmdir", "remove directories in /tmp" }, { "unlink", "remove files in /tmp" }, { "unlinkat", "as unlink" },
        { "rename", "rename in /tmp" }, { "renameat", "as rename" }, { "renameat2", "as rename" },
        { "link", "hard links in /tmp" }, { "linkat", "as link" }, { "symlink", "symlinks in /tmp" },
        { "symlinkat", "as symlink" }, { "chmod", "modes of own files" }, { "fchmod", "as chmod" },
        { "fchmodat", "as chmod" }, { "chown", "owner of own files (only to itself)" }, { "fchown", "as chown" },
        { "lchown", "as chown" }, { "fchownat", "as chown" }, { "umask", "file creation mask" },
        { "utime", "timestamps" }, { "utimes", "timestamps" }, { "utimensat", "timestamps" }, { "futimesat", "timestamps" },
        { "getxattr", "shutil.copystat" }, { "lgetxattr", "shutil.copystat" }, { "fgetxattr", "shutil.copystat" },
        { "listxattr", "shutil.copystat" }, { "llistxattr", "shutil.copystat" }, { "flistxattr", "shutil.copystat" },
        { "setxattr", "shutil.copystat (user.* on tmpfs)" }, { "lsetxattr", "as setxattr" }, { "fsetxattr", "as setxattr" },
        { "removexattr", "as setxattr" }, { "lremovexattr", "as setxattr" }, { "fremovexattr", "as setxattr" },

        /* memory */
        { "brk", "heap" }, { "mmap", "memory, loading libraries" }, { "munmap", "memory" }, { "mremap", "realloc" },
        { "mprotect", "loader, JIT-free W^X flips" }, { "madvise", "allocator hints" }, { "msync", "mapped files" },
        { "mincore", "allocator probes" }, { "mlock", "bounded by RLIMIT_MEMLOCK" }, { "mlock2", "as mlock" },
        { "munlock", "as mlock" }, { "mlockall", "as mlock" }, { "munlockall", "as mlock" },
        { "membarrier", "runtime barriers" }, { "get_mempolicy", "OpenBLAS reads NUMA policy" },
        { "pkey_alloc", "memory protection keys (own memory)" }, { "pkey_free", "as pkey_alloc" },
        { "pkey_mprotect", "as pkey_alloc" },

        /* processes and threads (clone is below, with its flags checked) */
        { "fork", "subprocess, multiprocessing" }, { "vfork", "posix_spawn" }, { "execve", "subprocess" },
        { "execveat", "fexecve" }, { "exit", "thread exit" }, { "exit_group", "process exit" },
        { "wait4", "reap children" }, { "waitid", "reap children" }, { "kill", "signal own processes (own PID namespace)" },
        { "tgkill", "signal own threads" }, { "tkill", "signal own threads" }, { "pidfd_open", "subprocess" },
        { "pidfd_send_signal", "subprocess" }, { "getpid", "ids" }, { "getppid", "ids" }, { "gettid", "ids" },
        { "getuid", "ids" }, { "geteuid", "ids" }, { "getgid", "ids" }, { "getegid", "ids" }, { "getresuid", "ids" },
        { "getresgid", "ids" }, { "getgroups", "ids" }, { "getpgrp", "process groups" }, { "getpgid", "process groups" },
        { "setpgid", "process groups (subprocess start_new_session)" }, { "getsid", "sessions" },
        { "setsid", "sessions (subprocess start_new_session)" }, { "set_tid_address", "thread start-up" },
        { "set_robust_list", "thread start-up" }, { "get_robust_list", "thread start-up" }, { "rseq", "glibc thread start-up" },
        { "arch_prctl", "thread-local storage" }, { "prctl", "thread names, dumpable; cannot widen privileges under no_new_privs" },
        { "capget", "reading (empty) capabilities" }, { "sched_yield", "threads" }, { "sched_getaffinity", "os.cpu_count, OpenBLAS" },
        { "sched_getparam", "scheduling queries" },
        { "sched_getscheduler", "scheduling queries" }, { "sched_get_priority_max", "scheduling queries" },
        { "sched_get_priority_min", "scheduling queries" }, { "sched_getattr", "scheduling queries" },
        { "getpriority", "nice value" },
        { "getrlimit", "resource limits" }, { "setrlimit", "can only lower a hard limit" },
        { "getrusage", "resource usage" }, { "times", "CPU times" }, { "uname", "platform module" },
        { "sysinfo", "memory totals (psutil-like queries)" }, { "getcpu", "which CPU" },
        { "restart_syscall", "signal restarts" },

        /* signals and timers */
        { "rt_sigaction", "signal handlers" }, { "rt_sigprocmask", "signal masks" }, { "rt_sigreturn", "signal return" },
        { "rt_sigpending", "signals" }, { "rt_sigtimedwait", "signals" }, { "rt_sigsuspend", "signals" },
        { "rt_sigqueueinfo", "signals to own processes" }, { "rt_tgsigqueueinfo", "signals to own threads" },
        { "sigaltstack", "faulthandler" }, { "signalfd", "signals as fds" }, { "signalfd4", "signals as fds" },
        { "alarm", "signal.alarm" }, { "pause", "signal.pause" }, { "getitimer", "signal.setitimer" },
        { "setitimer", "signal.setitimer" }, { "timer_create", "POSIX timers" }, { "timer_settime", "POSIX timers" },
        { "timer_gettime", "POSIX timers" }, { "timer_getoverrun", "POSIX timers" }, { "timer_delete", "POSIX timers" },
        { "timerfd_create", "asyncio-style timers" }, { "timerfd_settime", "timers" }, { "timerfd_gettime", "timers" },
        { "clock_gettime", "time" }, { "clock_getres", "time" }, { "clock_nanosleep", "time.sleep" },
        { "nanosleep", "time.sleep" }, { "gettimeofday", "time" }, { "time", "time" },

        /* waiting */
        { "futex", "locks, thread joins" }, { "futex_waitv", "locks" }, { "poll", "select module" }, { "ppoll", "polling" },
        { "select", "select module" }, { "pselect6", "polling" }, { "epoll_create", "asyncio" },
        { "epoll_create1", "asyncio" }, { "epoll_ctl", "asyncio" }, { "epoll_wait", "asyncio" },
        { "epoll_pwait", "asyncio" }, { "epoll_pwait2", "asyncio" }, { "eventfd", "event fds" }, { "eventfd2", "event fds" },

        /* sockets: socket() and socketpair() are below, AF_UNIX only; the network namespace has
         * no interface but a down loopback anyway */
        { "bind", "unix sockets" }, { "listen", "unix sockets" }, { "accept", "unix sockets" }, { "accept4", "unix sockets" },
        { "connect", "unix sockets" }, { "getsockname", "sockets" }, { "getpeername", "sockets" },
        { "sendto", "sockets" }, { "recvfrom", "sockets" }, { "sendmsg", "sockets, fd passing in multiprocessing" },
        { "recvmsg", "sockets" }, { "sendmmsg", "sockets" }, { "recvmmsg", "sockets" }, { "shutdown", "sockets" },
        { "setsockopt", "sockets" }, { "getsockopt", "sockets" },

        /* SysV IPC: private to the sandbox's own IPC namespace */
        { "shmget", "SysV shared memory" }, { "shmat", "SysV shared memory" }, { "shmdt", "SysV shared memory" },
        { "shmctl", "SysV shared memory" }, { "semget", "SysV semaphores" }, { "semop", "SysV semaphores" },
        { "semctl", "SysV semaphores" }, { "semtimedop", "SysV semaphores" },

        /* randomness */
        { "getrandom", "os.urandom, hash seeds" },
};

/* Listed to be refused with EPERM rather than the default ENOSYS: escape and exploit routes. */
static const struct rule refused[] = {
        { "ptrace", "inspect or steer another process" },
        { "process_vm_readv", "read another process's memory" },
        { "process_vm_writev", "write another process's memory" },
        { "kcmp", "probe other processes' kernel objects" },
        { "pidfd_getfd", "steal another process's descriptors" },
        { "unshare", "new namespaces: kernel attack surface" },
        { "setns", "enter other namespaces" },
        { "mount", "change the file system tree" },
        { "umount2", "uncover what the sandbox's mounts hide" },
        { "pivot_root", "change the root" },
        { "chroot", "change the root" },
        { "open_tree", "new mount API" }, { "move_mount", "new mount API" }, { "fsopen", "new mount API" },
        { "fsconfig", "new mount API" }, { "fsmount", "new mount API" }, { "fspick", "new mount API" },
        { "mount_setattr", "new mount API" },
        { "keyctl", "the kernel keyring is not namespaced" },
        { "add_key", "the kernel keyring is not namespaced" },
        { "request_key", "the kernel keyring is not namespaced" },
        { "io_uring_setup", "io_uring: large attack surface, and its work escapes this filter" },
        { "io_uring_enter", "io_uring" }, { "io_uring_register", "io_uring" },
        { "userfaultfd", "stalls kernel code at will (exploit aid)" },
        { "perf_event_open", "host-wide performance data, attack surface" },
        { "bpf", "programs in the kernel" },
        { "syslog", "the host's kernel log" },
        { "personality", "legacy execution domains (READ_IMPLIES_EXEC)" },
        { "modify_ldt", "16-bit segments: old exploit vector" },
        { "iopl", "port I/O" }, { "ioperm", "port I/O" },
        { "kexec_load", "replace the kernel" }, { "kexec_file_load", "replace the kernel" },
        { "init_module", "kernel modules" }, { "finit_module", "kernel modules" }, { "delete_module", "kernel modules" },
        { "reboot", "reboot the host" },
        { "swapon", "host swap" }, { "swapoff", "host swap" },
        { "acct", "process accounting" },
        { "quotactl", "disk quotas" }, { "quotactl_fd", "disk quotas" },
        { "settimeofday", "set the clock" }, { "clock_settime", "set the clock" }, { "clock_adjtime", "set the clock" },
        { "adjtimex", "set the clock" },
        { "open_by_handle_at", "opens files past the mount tree (the 'shocker' escape)" },
        { "name_to_handle_at", "pairs with open_by_handle_at" },
        { "mknod", "device nodes" }, { "mknodat", "device nodes" },
        { "setuid", "identity changes" }, { "setgid", "identity changes" }, { "setreuid", "identity changes" },
        { "setregid", "identity changes" }, { "setresuid", "identity changes" }, { "setresgid", "identity changes" },
        { "setgroups", "identity changes" }, { "setfsuid", "identity changes" }, { "setfsgid", "identity changes" },
        { "capset", "capabilities" },
        { "vhangup", "terminals" },
        { "fanotify_init", "file system monitoring" },
        /* Python needs no file watching. A watch on a shared /usr file tells one sandbox what
         * another reads, and the instances are a per-user budget that every sandbox's user
         * namespace charges to its owner, root: 128 of them starved host processes. */
        { "inotify_init", "watches others' file reads; instances drain root's budget" },
        { "inotify_init1", "as inotify_init" }, { "inotify_add_watch", "as inotify_init" },
        { "inotify_rm_watch", "as inotify_init" },
        { "migrate_pages", "memory of other processes" }, { "move_pages", "memory of other processes" },
        { "mbind", "NUMA policy" }, { "set_mempolicy", "NUMA policy" },
        { "lookup_dcookie", "kernel profiling" },
        { "uselib", "obsolete loader" },
        { "vmsplice", "page-cache games, a recurring exploit primitive" },
};

/* The only ioctl requests allowed: what isatty(), terminal size queries, non-blocking mode and
 * close-on-exec need. TIOCSTI and TIOCLINUX (typing into a terminal) are explicitly refused. */
static const unsigned long ioctl_allowed[] = { TCGETS, TIOCGWINSZ, TIOCGPGRP, FIONREAD, FIONBIO, FIOCLEX, FIONCLEX };
static const unsigned long ioctl_refused[] = { TIOCSTI, TIOCLINUX };

static const unsigned long clone_ns_flags = CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID |
                                            CLONE_NEWNET | CLONE_NEWCGROUP | CLONE_NEWTIME;

static int add_list(scmp_filter_ctx ctx, const struct rule *rules, size_t n, uint32_t action)
{
        for (size_t i = 0; i < n; i++) {
                int nr = seccomp_syscall_resolve_name(rules[i].name);
                if (nr == __NR_SCMP_ERROR)
                        continue;
                int r = seccomp_rule_add(ctx, action, nr, 0);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* setpriority, sched_setaffinity and prlimit64, for the calling process only (pid 0: what
 * os.nice(), os.sched_setaffinity(0, ...) and resource.setrlimit pass). On another process of
 * the sandbox with the same user, they would reach its parent: a batch's calls are forks of the
 * runner, and a call that reniced it, pinned it or lowered its limits would hand that to every
 * later call (a priority no call can raise back, and a channel between calls). EPERM otherwise. */
static int add_own_process_only(scmp_filter_ctx ctx)
{
        int r;
        if ((r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(setpriority), 2, SCMP_A0(SCMP_CMP_EQ, PRIO_PROCESS),
                                  SCMP_A1(SCMP_CMP_EQ, 0))) < 0 ||
            (r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(setpriority), 1,
                                  SCMP_A0(SCMP_CMP_NE, PRIO_PROCESS))) < 0 ||
            (r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(setpriority), 1, SCMP_A1(SCMP_CMP_NE, 0))) < 0)
                return r;
        const int pid_first[] = { SCMP_SYS(sched_setaffinity), SCMP_SYS(prlimit64) };
        for (size_t i = 0; i < ARRAY_SIZE(pid_first); i++)
                if ((r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, pid_first[i], 1, SCMP_A0(SCMP_CMP_EQ, 0))) < 0 ||
                    (r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), pid_first[i], 1, SCMP_A0(SCMP_CMP_NE, 0))) < 0)
                        return r;
        return 0;
}

static int build_filter(scmp_filter_ctx *out)
{
        int r;
        scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ERRNO(ENOSYS));
        if (!ctx)
                return -ENOMEM;
        /* seccomp_init() covers the native architecture only; everything else is killed. */
        if ((r = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS)) < 0)
                goto out;
        if ((r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2)) < 0)
                goto out;

        if ((r = add_list(ctx, allowed, ARRAY_SIZE(allowed), SCMP_ACT_ALLOW)) < 0)
                goto out;
        if ((r = add_list(ctx, refused, ARRAY_SIZE(refused), SCMP_ACT_ERRNO(EPERM))) < 0)
                goto out;
        if ((r = add_own_process_only(ctx)) < 0)
                goto out;

        /* clone: threads and processes, but no namespace flag at all. */
        if ((r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
                                  SCMP_A0(SCMP_CMP_MASKED_EQ, clone_ns_flags, 0))) < 0)
                goto out;
        for (unsigned long bit = 1; bit; bit <<= 1) {
                if (!(clone_ns_flags & bit))
                        continue;
                if ((r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
                                          SCMP_A0(SCMP_CMP_MASKED_EQ, bit, bit))) < 0)
                        goto out;
        }
        /* clone3 is deliberately absent and so gets the default ENOSYS: it passes its flags in
         * memory a filter cannot read, and ENOSYS makes glibc fall back to clone(), whose
         * flags it can. (libseccomp refuses a rule whose action equals the default.) */

        /* ioctl: the request is compared as 32 bits, as the kernel reads it. */
        for (size_t i = 0; i < ARRAY_SIZE(ioctl_allowed); i++)
                if ((r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
                                          SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu, ioctl_allowed[i]))) < 0)
                        goto out;
        for (size_t i = 0; i < ARRAY_SIZE(ioctl_refused); i++)
                if ((r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(ioctl), 1,
                                          SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu, ioctl_refused[i]))) < 0)
                        goto out;

        /* Page-cache probes: evicting a shared file's pages (DONTNEED), then asking whether a
         * read would block (RWF_NOWAIT), tells whether another sandbox read them meanwhile. */
        if ((r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(fadvise64), 1,
                                  SCMP_A3(SCMP_CMP_NE, POSIX_FADV_DONTNEED))) < 0 ||
            (r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(fadvise64), 1,
                                  SCMP_A3(SCMP_CMP_EQ, POSIX_FADV_DONTNEED))) < 0)
                goto out;
        const int rwf_calls[] = { SCMP_SYS(preadv2), SCMP_SYS(pwritev2) };
        for (size_t i = 0; i < ARRAY_SIZE(rwf_calls); i++)
                if ((r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, rwf_calls[i], 1,
                                          SCMP_A5(SCMP_CMP_MASKED_EQ, RWF_NOWAIT, 0))) < 0 ||
                    (r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EOPNOTSUPP), rwf_calls[i], 1,
                                          SCMP_A5(SCMP_CMP_MASKED_EQ, RWF_NOWAIT, RWF_NOWAIT))) < 0)
                        goto out;

        /* Sockets: AF_UNIX only. INET/INET6 (the network), NETLINK (kernel interfaces), PACKET,
         * VSOCK (the hypervisor), ALG (kernel crypto) and the rest get EAFNOSUPPORT, as from a
         * kernel built without them. */
        const int socket_calls[] = { SCMP_SYS(socket), SCMP_SYS(socketpair) };
        for (size_t i = 0; i < ARRAY_SIZE(socket_calls); i++) {
                if ((r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, socket_calls[i], 1, SCMP_A0(SCMP_CMP_EQ, AF_UNIX))) < 0)
                        goto out;
                if ((r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT), socket_calls[i], 1,
                                          SCMP_A0(SCMP_CMP_NE, AF_UNIX))) < 0)
                        goto out;
        }

        *out = ctx;
        return 0;
out:
        seccomp_release(ctx);
        return r;
}

/* The compiled program, made once per process and kept in a sealed memfd: each sandbox's
 * init (an exec'd program of its own, see init-main.c) loads it from there, and the processes
 * this one forks install it from memory (seccomp-bpf.c). libseccomp's compiler costs more than
 * the rest of a warm sandbox's set-up, and need not run in any sandbox at all. */
int sb_seccomp_compile(void)
{
        if (sb_seccomp_program_fd() >= 0)
                return 0;
        scmp_filter_ctx ctx;
        int r = build_filter(&ctx);
        if (r < 0)
                return r;
        int fd = memfd_create("seccomp-bpf", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (fd < 0) {
                r = -errno;
                seccomp_release(ctx);
                return r;
        }
        r = seccomp_export_bpf(ctx, fd);
        seccomp_release(ctx);
        if (r == 0 && fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0)
                r = -errno;
        if (r == 0)
                r = sb_seccomp_load(fd);
        if (r < 0)
                (void)close(fd);
        return r;
}
