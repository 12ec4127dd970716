/* try_syscall.c — asks the kernel, from inside the sandbox, which forbidden calls get through.
 *
 *   try_syscall [NAME...]      (no NAME: every probe in the table below)
 *   try_syscall -l             (list the probe names)
 *
 * For every probe one line on standard output:
 *
 *   NAME RESULT ERRNO
 *
 *   RESULT  the raw return value (-1 on failure), "killed" when the call ended the process,
 *           "exit" when it exited without reporting, "unknown" for a name not in the table
 *   ERRNO   the errno name (EPERM, ENOSYS, EFAULT, ...), "-" on success, or the signal name
 *           (SIGSYS, ...) when RESULT is "killed"
 *
 * Each probe runs in its own fork()ed child, so a call that gets through (or a filter that
 * kills) cannot disturb the probes after it. Arguments are chosen so that a call the filter
 * lets pass fails in the kernel with something other than EPERM/ENOSYS wherever the kernel
 * allows that: pointers point into the kernel half of the address space (EFAULT), descriptors
 * and flags are out of range (EBADF/EINVAL). So:
 *
 *   EPERM / ENOSYS   the filter refused the call (or the kernel refused it for lack of a
 *                    capability before looking at the arguments: either way it did nothing)
 *   EFAULT, EINVAL, EBADF, success ...   the call reached the kernel: the filter let it pass
 *   killed SIGSYS    the filter killed the process (expected for x32_* and i386_*)
 *
 * The "ctl_*" probes are controls: calls any sandboxed program needs, which must get through
 * (ctl_uname EFAULT shows that a passing call is recognised as such). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif
#ifndef AF_ALG
#define AF_ALG 38
#endif
#ifndef TIOCLINUX
#define TIOCLINUX 0x541C
#endif

/* An address in the kernel half: every copy_from_user/copy_to_user on it fails with EFAULT. */
#define BAD ((long)0xffffffffffff0000UL)
/* As a descriptor (the kernel reads an int): -65536, EBADF. */
#define BADFD BAD
/* The x32 ABI marks its calls with bit 30 of the number. */
#define X32_BIT 0x40000000L
/* Hi bits the kernel drops from 32-bit arguments (int/unsigned int) but a 64-bit filter sees. */
#define HI32 (1L << 32)

enum kind {
        K_SYSCALL, /* syscall(nr, a[0..5]) */
        K_CLONE,   /* raw clone(a[0]); a child that gets made leaves at once */
        K_I386,    /* int $0x80 with eax = nr, ebx.. = a[0..] */
};

struct probe {
        const char *name;
        enum kind kind;
        long nr;
        long a[6];
};

#define P(name, nr, ...) { name, K_SYSCALL, nr, { __VA_ARGS__ } }

static const struct probe probes[] = {
        /* --- controls: must get through --- */
        P("ctl_getpid", SYS_getpid, 0),
        P("ctl_uname", SYS_uname, BAD),

        /* --- other processes --- */
        P("ptrace", SYS_ptrace, 16 /* PTRACE_ATTACH */, BAD, 0, 0),
        P("ptrace_traceme", SYS_ptrace, 0 /* PTRACE_TRACEME */, 0, 0, 0),
        P("process_vm_readv", SYS_process_vm_readv, 1, BAD, 1, BAD, 1, 0),
        P("process_vm_writev", SYS_process_vm_writev, 1, BAD, 1, BAD, 1, 0),
        P("kcmp", SYS_kcmp, BAD, BAD, 0, 0, 0),
#ifdef SYS_pidfd_getfd
        P("pidfd_getfd", SYS_pidfd_getfd, BADFD, 0, 0),
#endif

        /* --- namespaces --- */
        P("unshare", SYS_unshare, BAD),
        P("unshare_newuser", SYS_unshare, CLONE_NEWUSER),
        P("unshare_newns", SYS_unshare, CLONE_NEWNS),
        P("unshare_newnet", SYS_unshare, CLONE_NEWNET),
        P("setns", SYS_setns, BADFD, 0),
        { "clone_newuser", K_CLONE, SYS_clone, { CLONE_NEWUSER | SIGCHLD } },
        { "clone_newns", K_CLONE, SYS_clone, { CLONE_NEWNS | SIGCHLD } },
        { "clone_newpid", K_CLONE, SYS_clone, { CLONE_NEWPID | SIGCHLD } },
        { "clone_newnet", K_CLONE, SYS_clone, { CLONE_NEWNET | SIGCHLD } },
        { "clone_newipc", K_CLONE, SYS_clone, { CLONE_NEWIPC | SIGCHLD } },
        { "clone_newuts", K_CLONE, SYS_clone, { CLONE_NEWUTS | SIGCHLD } },
        { "clone_newcgroup", K_CLONE, SYS_clone, { CLONE_NEWCGROUP | SIGCHLD } },
        /* The kernel uses only the low 32 bits of clone()'s flags. */
        { "clone_newuser_hibits", K_CLONE, SYS_clone, { HI32 | CLONE_NEWUSER | SIGCHLD } },
#ifdef SYS_clone3
        P("clone3", SYS_clone3, BAD, 88 /* CLONE_ARGS_SIZE_VER0 */),
#endif

        /* --- mounts and the root --- */
        P("mount", SYS_mount, BAD, BAD, BAD, 0, BAD),
        P("umount2", SYS_umount2, BAD, 0),
        P("pivot_root", SYS_pivot_root, BAD, BAD),
        P("chroot", SYS_chroot, BAD),
#ifdef SYS_open_tree
        P("open_tree", SYS_open_tree, BADFD, BAD, 0),
        P("move_mount", SYS_move_mount, BADFD, BAD, BADFD, BAD, 0),
        P("fsopen", SYS_fsopen, BAD, 0),
        P("fsconfig", SYS_fsconfig, BADFD, 0, BAD, BAD, 0),
        P("fsmount", SYS_fsmount, BADFD, 0, 0),
        P("fspick", SYS_fspick, BADFD, BAD, 0),
#endif
#ifdef SYS_mount_setattr
        P("mount_setattr", SYS_mount_setattr, BADFD, BAD, 0, BAD, 32),
#endif
        P("open_by_handle_at", SYS_open_by_handle_at, BADFD, BAD, 0),
        P("name_to_handle_at", SYS_name_to_handle_at, BADFD, BAD, BAD, BAD, 0),

        /* --- keyrings --- */
        P("keyctl", SYS_keyctl, 0 /* KEYCTL_GET_KEYRING_ID */, BAD, 0),
        P("add_key", SYS_add_key, BAD, BAD, BAD, 8, BAD),
        P("request_key", SYS_request_key, BAD, BAD, BAD, 0),

        /* --- kernel attack surface --- */
        P("io_uring_setup", SYS_io_uring_setup, 1, BAD),
        P("io_uring_enter", SYS_io_uring_enter, BADFD, 0, 0, 0, 0, 0),
        P("io_uring_register", SYS_io_uring_register, BADFD, 0, BAD, 1),
        P("userfaultfd", SYS_userfaultfd, 1 /* UFFD_USER_MODE_ONLY */ | 0x10000),
        P("perf_event_open", SYS_perf_event_open, BAD, 0, -1, -1, 0),
        P("bpf", SYS_bpf, 0 /* BPF_MAP_CREATE */, BAD, 64),
        P("syslog", SYS_syslog, 3 /* SYSLOG_ACTION_READ_ALL */, BAD, 64),
        P("personality", SYS_personality, 0xffffffffUL /* query only */),
        P("modify_ldt", SYS_modify_ldt, 1, BAD, 16),
        P("iopl", SYS_iopl, 7),
        P("ioperm", SYS_ioperm, 0x10000, 8, 1),
        P("kexec_load", SYS_kexec_load, 0, 1, BAD, 0),
#ifdef SYS_kexec_file_load
        P("kexec_file_load", SYS_kexec_file_load, BADFD, BADFD, 0, BAD, 0),
#endif
        P("init_module", SYS_init_module, BAD, 64, BAD),
        P("finit_module", SYS_finit_module, BADFD, BAD, 0),
        P("delete_module", SYS_delete_module, BAD, 0),
        P("reboot", SYS_reboot, 0, 0, 0, 0 /* bad magic */),
        P("swapon", SYS_swapon, BAD, 0),
        P("swapoff", SYS_swapoff, BAD),
        P("acct", SYS_acct, BAD),
        P("quotactl", SYS_quotactl, BAD, BAD, 0, BAD),
#ifdef SYS_quotactl_fd
        P("quotactl_fd", SYS_quotactl_fd, BADFD, 0, 0, BAD),
#endif
        P("settimeofday", SYS_settimeofday, BAD, BAD),
        P("clock_settime", SYS_clock_settime, 0 /* CLOCK_REALTIME */, BAD),
        P("clock_adjtime", SYS_clock_adjtime, 0, BAD),
        P("adjtimex", SYS_adjtimex, BAD),
        P("lookup_dcookie", SYS_lookup_dcookie, 0, BAD, 16),
        P("fanotify_init", SYS_fanotify_init, BAD, 0),
        P("vhangup", SYS_vhangup, 0),
        P("uselib", SYS_uselib, BAD),
        P("move_pages", SYS_move_pages, BAD, 1, BAD, BAD, BAD, 0),
        P("migrate_pages", SYS_migrate_pages, BAD, 64, BAD, BAD),

        /* --- terminal injection and other ioctls (on a bad descriptor: EBADF if passed) --- */
        P("ioctl_tiocsti", SYS_ioctl, BADFD, TIOCSTI, BAD),
        P("ioctl_tiocsti_hibits", SYS_ioctl, BADFD, HI32 | TIOCSTI, BAD),
        P("ioctl_tioclinux", SYS_ioctl, BADFD, TIOCLINUX, BAD),
        P("ioctl_tiocsctty", SYS_ioctl, BADFD, TIOCSCTTY, 1),
        P("ioctl_tiocsetd", SYS_ioctl, BADFD, TIOCSETD, BAD),
        P("ioctl_random", SYS_ioctl, BADFD, 0x4B2F /* KDGKBTYPE-ish, no use to Python */, BAD),

        /* --- socket families (a permitted family would hand out a socket) --- */
        P("socket_inet", SYS_socket, AF_INET, SOCK_STREAM, 0),
        P("socket_inet_hibits", SYS_socket, HI32 | AF_INET, SOCK_STREAM, 0),
        P("socket_inet6", SYS_socket, AF_INET6, SOCK_DGRAM, 0),
        P("socket_netlink", SYS_socket, AF_NETLINK, SOCK_RAW, 0),
        P("socket_packet", SYS_socket, AF_PACKET, SOCK_RAW, 0),
        P("socket_vsock", SYS_socket, AF_VSOCK, SOCK_STREAM, 0),
        P("socket_alg", SYS_socket, AF_ALG, SOCK_SEQPACKET, 0),
        P("socketpair_inet", SYS_socketpair, AF_INET, SOCK_STREAM, 0, BAD),

        /* --- other ABIs: the process must be killed (SIGSYS) --- */
        P("x32_getpid", X32_BIT | SYS_getpid, 0),
        P("x32_ptrace", X32_BIT | 521 /* x32 ptrace */, 16, 1, 0, 0),
        P("x32_mount", X32_BIT | SYS_mount, BAD, BAD, BAD, 0, BAD),
        { "i386_getpid", K_I386, 20, { 0 } },
        { "i386_ptrace", K_I386, 26, { 16, 1, 0, 0 } },
        { "i386_mount", K_I386, 21, { 0, 0, 0, 0, 0 } },
};

#define NPROBES (sizeof(probes) / sizeof(probes[0]))

static long do_i386(long nr, const long *a)
{
        long ret;
        /* rbx/rcx/rdx/rsi/rdi/rbp: the i386 argument registers (only the low 32 bits count). */
        __asm__ volatile("int $0x80"
                         : "=a"(ret)
                         : "a"(nr), "b"(a[0]), "c"(a[1]), "d"(a[2]), "S"(a[3]), "D"(a[4])
                         : "memory", "cc", "r8", "r9", "r10", "r11");
        return ret;
}

static void report(const char *name, long ret, int err)
{
        char line[160];
        int n;
        /* Calls returning int (modify_ldt) can come back as a zero-extended -errno. */
        if (ret >= 0xfffff001L && ret <= 0xffffffffL) {
                err = (int)(0x100000000L - ret);
                ret = -1;
        }
        if (ret == -1)
                n = snprintf(line, sizeof(line), "%s -1 %s\n", name, strerrorname_np(err) ? strerrorname_np(err) : "E?");
        else
                n = snprintf(line, sizeof(line), "%s %ld -\n", name, ret);
        /* One write() per line: lines from different children never interleave. */
        if (n > 0)
                (void)!write(1, line, (size_t)n);
}

/* Runs in the forked child. */
static __attribute__((noreturn)) void run_probe(const struct probe *p)
{
        long ret;
        int err = 0;
        const long *a = p->a;
        switch (p->kind) {
        case K_SYSCALL:
                errno = 0;
                ret = syscall(p->nr, a[0], a[1], a[2], a[3], a[4], a[5]);
                err = errno;
                break;
        case K_CLONE:
                errno = 0;
                ret = syscall(SYS_clone, a[0], 0L, 0L, 0L, 0L);
                err = errno;
                if (ret == 0)
                        _exit(0); /* a child in new namespaces was made: leave at once */
                if (ret > 0)
                        (void)waitpid((pid_t)ret, NULL, __WALL);
                break;
        case K_I386:
                ret = do_i386(p->nr, a);
                if (ret < 0 && ret > -4096) {
                        err = (int)-ret;
                        ret = -1;
                }
                break;
        default:
                _exit(3);
        }
        report(p->name, ret, err);
        _exit(0);
}

static void run_one(const struct probe *p)
{
        pid_t pid = fork();
        if (pid < 0) {
                printf("%s fork-failed %s\n", p->name, strerrorname_np(errno));
                fflush(stdout);
                return;
        }
        if (pid == 0)
                run_probe(p);
        int st;
        while (waitpid(pid, &st, 0) < 0)
                if (errno != EINTR) {
                        printf("%s wait-failed %s\n", p->name, strerrorname_np(errno));
                        fflush(stdout);
                        return;
                }
        if (WIFSIGNALED(st)) {
                const char *s = sigabbrev_np(WTERMSIG(st));
                printf("%s killed SIG%s\n", p->name, s ? s : "?");
        } else if (WIFEXITED(st) && WEXITSTATUS(st) != 0) {
                printf("%s exit %d\n", p->name, WEXITSTATUS(st));
        }
        fflush(stdout);
}

int main(int argc, char **argv)
{
        setvbuf(stdout, NULL, _IOLBF, 0);
        if (argc == 2 && strcmp(argv[1], "-l") == 0) {
                for (size_t i = 0; i < NPROBES; i++)
                        printf("%s\n", probes[i].name);
                return 0;
        }
        if (argc == 1) {
                for (size_t i = 0; i < NPROBES; i++)
                        run_one(&probes[i]);
                return 0;
        }
        for (int k = 1; k < argc; k++) {
                size_t i;
                for (i = 0; i < NPROBES; i++)
                        if (strcmp(argv[k], probes[i].name) == 0)
                                break;
                if (i == NPROBES) {
                        printf("%s unknown -\n", argv[k]);
                        continue;
                }
                run_one(&probes[i]);
        }
        return 0;
}
