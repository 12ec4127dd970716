/* seccomp.c — the system-call filter of the script's process.
 *
 * Installed last, just before execve, after no_new_privs. It denies what a sandboxed Python
 * has no use for and what kernel attack surface or escape routes need: each rule says why.
 * Calls from any other architecture, and the x32 ABI, kill the process: they are how a filter
 * written for x86_64 numbers gets bypassed. */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/sched.h>
#include <sched.h>
#include <seccomp.h>
#include <stddef.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <termios.h>

#include "internal.h"
#include "util.h"

struct rule {
        const char *name; /* resolved with seccomp_syscall_resolve_name: absent on this arch is fine */
        int err;          /* errno returned instead of running the call */
        const char *why;
};

static const struct rule denied[] = {
        { "ptrace", EPERM, "inspect or steer another process" },
        { "process_vm_readv", EPERM, "read another process's memory" },
        { "process_vm_writev", EPERM, "write another process's memory" },
        { "kcmp", EPERM, "probe other processes' kernel objects" },
        { "pidfd_getfd", EPERM, "steal another process's descriptors" },
        { "unshare", EPERM, "new namespaces: kernel attack surface, and a way out of limits" },
        { "setns", EPERM, "enter other namespaces" },
        { "mount", EPERM, "change the file system tree" },
        { "umount2", EPERM, "uncover what the sandbox's mounts hide" },
        { "pivot_root", EPERM, "change the root" },
        { "chroot", EPERM, "change the root" },
        { "open_tree", EPERM, "new mount API" },
        { "move_mount", EPERM, "new mount API" },
        { "fsopen", EPERM, "new mount API" },
        { "fsconfig", EPERM, "new mount API" },
        { "fsmount", EPERM, "new mount API" },
        { "fspick", EPERM, "new mount API" },
        { "mount_setattr", EPERM, "new mount API" },
        { "keyctl", EPERM, "the kernel keyring is shared with the host" },
        { "add_key", EPERM, "the kernel keyring is shared with the host" },
        { "request_key", EPERM, "the kernel keyring is shared with the host" },
        { "io_uring_setup", EPERM, "io_uring: large attack surface, bypasses this filter" },
        { "io_uring_enter", EPERM, "io_uring" },
        { "io_uring_register", EPERM, "io_uring" },
        { "userfaultfd", EPERM, "stalls kernel code paths at will (exploit aid)" },
        { "perf_event_open", EPERM, "host-wide performance data, attack surface" },
        { "bpf", EPERM, "load programs into the kernel" },
        { "syslog", EPERM, "the host's kernel log" },
        { "personality", EPERM, "legacy execution domains (READ_IMPLIES_EXEC and friends)" },
        { "modify_ldt", EPERM, "16-bit segments: old exploit vector" },
        { "iopl", EPERM, "port I/O" },
        { "ioperm", EPERM, "port I/O" },
        { "kexec_load", EPERM, "replace the kernel" },
        { "kexec_file_load", EPERM, "replace the kernel" },
        { "init_module", EPERM, "load kernel modules" },
        { "finit_module", EPERM, "load kernel modules" },
        { "delete_module", EPERM, "unload kernel modules" },
        { "reboot", EPERM, "reboot the host" },
        { "swapon", EPERM, "host swap" },
        { "swapoff", EPERM, "host swap" },
        { "acct", EPERM, "process accounting" },
        { "quotactl", EPERM, "disk quotas" },
        { "quotactl_fd", EPERM, "disk quotas" },
        { "settimeofday", EPERM, "set the clock" },
        { "clock_settime", EPERM, "set the clock" },
        { "clock_adjtime", EPERM, "set the clock" },
        { "adjtimex", EPERM, "set the clock" },
        { "open_by_handle_at", EPERM, "opens files by handle, past the mount tree (the shocker escape)" },
        { "name_to_handle_at", EPERM, "file handles: pairs with open_by_handle_at" },
        { "lookup_dcookie", EPERM, "kernel profiling internals" },
        { "vhangup", EPERM, "terminal control" },
        { "nfsservctl", EPERM, "obsolete" },
        { "uselib", EPERM, "obsolete loader call" },
        { "fanotify_init", EPERM, "file system event monitoring" },
        { "migrate_pages", EPERM, "NUMA placement of other processes" },
        { "move_pages", EPERM, "NUMA placement of other processes" },
        { "mbind", EPERM, "NUMA policy" },
        { "set_mempolicy", EPERM, "NUMA policy" },
};

/* New namespaces through clone() are refused like unshare(). */
static const unsigned long clone_ns_flags = CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER |
                                            CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWCGROUP;

int sb_seccomp_install(void)
{
        int r;
        scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
        if (!ctx)
                return -ENOMEM;

        /* Native architecture only: seccomp_init() adds it; anything else is killed. */
        if ((r = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS)) < 0)
                goto out;

        for (size_t i = 0; i < ARRAY_SIZE(denied); i++) {
                int nr = seccomp_syscall_resolve_name(denied[i].name);
                if (nr == __NR_SCMP_ERROR)
                        continue;
                if ((r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(denied[i].err), nr, 0)) < 0)
                        goto out;
        }

        /* clone3 passes its flags in memory the filter cannot read: ENOSYS makes glibc fall back
         * to clone(), whose flags it can. */
        if ((r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0)) < 0)
                goto out;
        /* One rule per flag: a rule can only test "(flags & mask) == value". */
        for (unsigned long bit = 1; bit; bit <<= 1) {
                if (!(clone_ns_flags & bit))
                        continue;
                if ((r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
                                          SCMP_A0(SCMP_CMP_MASKED_EQ, bit, bit))) < 0)
                        goto out;
        }

        /* Typing into a terminal's input queue (TIOCSTI) or the console (TIOCLINUX). The request
         * argument is compared as 32 bits: the kernel ignores the upper half. */
        if ((r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(ioctl), 1,
                                  SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu, TIOCSTI))) < 0)
                goto out;
        if ((r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(ioctl), 1,
                                  SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu, TIOCLINUX))) < 0)
                goto out;

        /* Sockets: only AF_UNIX (within the sandbox). The network namespace has no interfaces
         * anyway; refusing the families keeps their kernel code out of reach. */
        if ((r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT), SCMP_SYS(socket), 1,
                                  SCMP_A0(SCMP_CMP_NE, AF_UNIX))) < 0)
                goto out;

        r = seccomp_load(ctx);
out:
        seccomp_release(ctx);
        return r;
}
