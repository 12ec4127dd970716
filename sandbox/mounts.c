/* mounts.c — the sandbox's root file system.
 *
 * Each sandbox's init makes it in its own mount namespace (so nothing here is visible to the
 * host or to other sandboxes, and all of it disappears with the namespace):
 *
 *   /            tmpfs, read-only once built
 *   /usr         read-only binds of the host's /usr/bin, /usr/lib, /usr/lib64 and /usr/share
 *                (python3, Debian's Python libraries, their data); never /usr/local (site
 *                configuration, package-manager tokens), /usr/src, /usr/sbin
 *   /bin /lib..  the host's merged-/usr symlinks (or read-only binds where they are directories)
 *   /etc         a handful of read-only files the loader, fontconfig and matplotlib read, and a
 *                passwd/group that name the sandbox's two users
 *   /proc        a new procfs: only the sandbox's own processes
 *   /dev         null, zero, random, urandom (binds of the host's nodes), fd symlinks, shm -> /tmp
 *   /tmp         tmpfs private to the request, size- and inode-limited, nosuid, nodev
 *
 * Then pivot_root into it and detach the old root. Every bind is nosuid and nodev.
 *
 * All but /proc and /tmp is the same for every sandbox: the init factory builds it once, the
 * template (see below), and each init binds the whole of it with one call and adds its own
 * /proc and /tmp. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"
#include "util.h"

/* Where the new root is assembled. Mounting over it only affects this mount namespace. */
#define NEWROOT "/tmp"

static int fail(char *err, size_t errlen, const char *step, const char *path, int e)
{
        snprintf(err, errlen, "%s(%s): %s", step, path, strerror(e));
        return -e;
}

/* A bind mount keeps the flags of its source until it is remounted; the remount must repeat
 * the flags the source's mount has locked (nosuid, nodev, noexec, atime) or the kernel refuses. */
static unsigned long locked_flags(const char *src)
{
        struct statvfs sv;
        unsigned long f = 0;
        if (statvfs(src, &sv) < 0)
                return 0;
        if (sv.f_flag & ST_NOSUID)
                f |= MS_NOSUID;
        if (sv.f_flag & ST_NODEV)
                f |= MS_NODEV;
        if (sv.f_flag & ST_NOEXEC)
                f |= MS_NOEXEC;
        if (sv.f_flag & ST_NOATIME)
                f |= MS_NOATIME;
        if (sv.f_flag & ST_NODIRATIME)
                f |= MS_NODIRATIME;
        if (sv.f_flag & ST_RELATIME)
                f |= MS_RELATIME;
        return f;
}

/* Read-only bind of src onto dst (created as a file or directory to match src). A missing
 * optional source is skipped. */
static int bind_ro(const char *src, const char *dst, bool optional, unsigned long extra, char *err, size_t errlen)
{
        struct stat st;
        if (stat(src, &st) < 0) {
                if (optional && errno == ENOENT)
                        return 0;
                return fail(err, errlen, "stat", src, errno);
        }
        if (S_ISDIR(st.st_mode)) {
                if (mkdir(dst, 0755) < 0 && errno != EEXIST)
                        return fail(err, errlen, "mkdir", dst, errno);
        } else {
                int fd = open(dst, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
                if (fd < 0)
                        return fail(err, errlen, "create", dst, errno);
                (void)close(fd);
        }
        if (mount(src, dst, NULL, MS_BIND | MS_REC, NULL) < 0)
                return fail(err, errlen, "bind", src, errno);
        unsigned long flags = MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | extra | locked_flags(src);
        if (mount(NULL, dst, NULL, flags, NULL) < 0)
                return fail(err, errlen, "remount read-only", dst, errno);
        return 0;
}

/* /bin, /lib, ... are symlinks into /usr on a merged-/usr system (Debian 12); copy the link. On
 * a system where they are directories, bind them instead. */
static int mirror_top_dir(const char *name, char *err, size_t errlen)
{
        char src[64], dst[64], target[256];
        snprintf(src, sizeof(src), "/%s", name);
        snprintf(dst, sizeof(dst), NEWROOT "/%s", name);
        ssize_t n = readlink(src, target, sizeof(target) - 1);
        if (n >= 0) {
                target[n] = '\0';
                if (symlink(target, dst) < 0)
                        return fail(err, errlen, "symlink", dst, errno);
                return 0;
        }
        if (errno == ENOENT)
                return 0;
        return bind_ro(src, dst, true, MS_NODEV, err, errlen);
}

static int write_file(const char *path, const char *text, char *err, size_t errlen)
{
        int r = write_text_file(path, O_CREAT | O_TRUNC, text);
        return r < 0 ? fail(err, errlen, "write", path, -r) : 0;
}

static int setup_etc(char *err, size_t errlen)
{
        static const char *const files[] = {
                "ld.so.cache",      /* the loader finds libraries without scanning */
                "alternatives",     /* Debian's libblas.so.3/liblapack.so.3 links point here */
                "ssl",              /* CA certificates: requests and ssl import them */
                "matplotlibrc",     /* Debian's matplotlib reads its defaults here */
                "fonts",            /* fontconfig's configuration, for matplotlib */
                "localtime",        /* time.localtime() agrees with the host */
                "mime.types",       /* mimetypes module */
        };
        int r;
        if (mkdir(NEWROOT "/etc", 0755) < 0)
                return fail(err, errlen, "mkdir", NEWROOT "/etc", errno);
        for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
                char src[64], dst[80];
                snprintf(src, sizeof(src), "/etc/%s", files[i]);
                snprintf(dst, sizeof(dst), NEWROOT "/etc/%s", files[i]);
                if ((r = bind_ro(src, dst, true, MS_NODEV | MS_NOEXEC, err, errlen)) < 0)
                        return r;
        }
        /* getpass.getuser(), pwd.getpwuid() and friends find names for the two uids. */
        if ((r = write_file(NEWROOT "/etc/passwd",
                            "root:x:0:0:sandbox init:/:/usr/sbin/nologin\n"
                            "sandbox:x:1000:1000:pyexec script:/tmp:/usr/sbin/nologin\n"
                            "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
                            err, errlen)) < 0)
                return r;
        if ((r = write_file(NEWROOT "/etc/group", "root:x:0:\nsandbox:x:1000:\nnogroup:x:65534:\n", err, errlen)) < 0)
                return r;
        return write_file(NEWROOT "/etc/hostname", "pyexec\n", err, errlen);
}

static int setup_dev(char *err, size_t errlen)
{
        static const char *const nodes[] = { "null", "zero", "random", "urandom" };
        static const char *const links[][2] = {
                { "/proc/self/fd", "fd" },       { "/proc/self/fd/0", "stdin" },
                { "/proc/self/fd/1", "stdout" }, { "/proc/self/fd/2", "stderr" },
                { "/tmp", "shm" }, /* POSIX shm and semaphores land in /tmp, inside its limit */
        };
        if (mkdir(NEWROOT "/dev", 0755) < 0)
                return fail(err, errlen, "mkdir", NEWROOT "/dev", errno);
        if (mount("tmpfs", NEWROOT "/dev", "tmpfs", MS_NOSUID | MS_NOEXEC, "size=64k,nr_inodes=64,mode=0755") < 0)
                return fail(err, errlen, "mount tmpfs", NEWROOT "/dev", errno);
        for (size_t i = 0; i < ARRAY_SIZE(nodes); i++) {
                char src[32], dst[64];
                snprintf(src, sizeof(src), "/dev/%s", nodes[i]);
                snprintf(dst, sizeof(dst), NEWROOT "/dev/%s", nodes[i]);
                /* Device nodes cannot be made in a user namespace; binding the host's works, and
                 * the bind keeps them usable (no nodev). */
                int fd = open(dst, O_WRONLY | O_CREAT | O_CLOEXEC, 0666);
                if (fd < 0)
                        return fail(err, errlen, "create", dst, errno);
                (void)close(fd);
                if (mount(src, dst, NULL, MS_BIND, NULL) < 0)
                        return fail(err, errlen, "bind", src, errno);
                /* Read-only as a file (no chmod, no truncate); reading and writing the device
                 * itself is unaffected. */
                if (mount(NULL, dst, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NOEXEC | locked_flags(src),
                          NULL) < 0)
                        return fail(err, errlen, "remount", dst, errno);
        }
        for (size_t i = 0; i < ARRAY_SIZE(links); i++) {
                char dst[64];
                snprintf(dst, sizeof(dst), NEWROOT "/dev/%s", links[i][1]);
                if (symlink(links[i][0], dst) < 0)
                        return fail(err, errlen, "symlink", dst, errno);
        }
        if (mount(NULL, NEWROOT "/dev", NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NOEXEC, NULL) < 0)
                return fail(err, errlen, "remount read-only", NEWROOT "/dev", errno);
        return 0;
}

/* Only what Python and its libraries run from: the host's /usr also holds its local site
 * configuration (/usr/local/etc), sources and administration tools. */
static int setup_usr(char *err, size_t errlen)
{
        static const struct {
                const char *dir;
                bool optional;
        } parts[] = { { "bin", false }, { "lib", false }, { "lib64", true }, { "share", false } };
        if (mkdir(NEWROOT "/usr", 0755) < 0)
                return fail(err, errlen, "mkdir", NEWROOT "/usr", errno);
        for (size_t i = 0; i < ARRAY_SIZE(parts); i++) {
                char src[32], dst[48];
                snprintf(src, sizeof(src), "/usr/%s", parts[i].dir);
                snprintf(dst, sizeof(dst), NEWROOT "/usr/%s", parts[i].dir);
                int r = bind_ro(src, dst, parts[i].optional, MS_NODEV, err, errlen);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* The parts every sandbox's root has alike, built below NEWROOT: its tmpfs, /usr, the top
 * directories, /etc, /dev, and the empty /proc and /tmp a sandbox mounts its own on. */
static int build_shared_parts(char *err, size_t errlen)
{
        int r;
        if (mount("tmpfs", NEWROOT, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,nr_inodes=256,mode=0755") < 0)
                return fail(err, errlen, "mount tmpfs", NEWROOT, errno);
        if ((r = setup_usr(err, errlen)) < 0)
                return r;
        static const char *const top[] = { "bin", "sbin", "lib", "lib32", "lib64", "libx32" };
        for (size_t i = 0; i < ARRAY_SIZE(top); i++)
                if ((r = mirror_top_dir(top[i], err, errlen)) < 0)
                        return r;
        if ((r = setup_etc(err, errlen)) < 0)
                return r;
        if ((r = setup_dev(err, errlen)) < 0)
                return r;
        if (mkdir(NEWROOT "/proc", 0555) < 0)
                return fail(err, errlen, "mkdir", NEWROOT "/proc", errno);
        if (mkdir(NEWROOT "/tmp", 0755) < 0)
                return fail(err, errlen, "mkdir", NEWROOT "/tmp", errno);
        return 0;
}

/* ---- the template ------------------------------------------------------------------------
 *
 * The shared parts are the same for every sandbox, and building them is ~150 calls per
 * request. So the init factory builds them once, in a mount namespace of its own (nothing of
 * it reaches the host's), read-only: the template. Every init is cloned into a copy of that
 * namespace, where the copies are locked to it (a user namespace cannot unmount them or make
 * them writable), and takes the whole tree with one recursive bind; then only its /proc and
 * /tmp are its own. Without the right to make a mount namespace (a container without
 * CAP_SYS_ADMIN), each init builds the parts itself, as before.
 *
 * Its binds are the host's files as they were when the factory started (a directory bind
 * shows later changes inside it; a file bind keeps the file it was given, and ldconfig or
 * tzdata replace theirs): a reload starts new workers, and with them new templates. Nothing
 * in a sandbox can change the template: its tmpfs is read-only as a file system, not just as
 * a mount, and only the host's root could make it writable again. */
static bool template_ready;

static bool under(const char *path, const char *top)
{
        size_t n = strlen(top);
        return strncmp(path, top, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

/* Once the template is built, the factory's namespace needs of the host's mounts only "/"
 * (pivoted away from by every init) and /proc (the kernel lets a user namespace mount a new
 * procfs only where one is fully visible). Every init's clone copies each mount of this
 * namespace and its pivot detaches them again: here ~24 more of them (/sys and its cgroup
 * hierarchies, /dev and its submounts, /run/netns entries), ~40% of the mounts each
 * request copies and tears down. So they go, last mounted first. Best effort: a mount
 * this namespace may not unmount (locked, in a container) stays, as it did. */
static void prune_host_mounts(void)
{
        FILE *f = fopen("/proc/self/mountinfo", "re");
        if (!f)
                return;
        char points[128][256];
        int n = 0;
        char line[1024];
        while (n < 128 && fgets(line, sizeof(line), f)) {
                /* "id parent major:minor root mount-point ...": the fifth field (octal
                 * escapes for spaces and the like are left as they are: such a path is not
                 * found, and its mount stays). */
                if (sscanf(line, "%*s %*s %*s %*s %255s", points[n]) == 1 && strcmp(points[n], "/") != 0 &&
                    !under(points[n], "/proc") && !under(points[n], NEWROOT))
                        n++;
        }
        fclose(f);
        while (n-- > 0)
                (void)umount2(points[n], MNT_DETACH);
}

int sb_root_template_prepare(char *why, size_t whylen)
{
        if (unshare(CLONE_NEWNS) < 0)
                return fail(why, whylen, "unshare", "CLONE_NEWNS", errno);
        if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
                return fail(why, whylen, "make-rprivate", "/", errno);
        int r = build_shared_parts(why, whylen);
        if (r == 0 && mount(NULL, NEWROOT, NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) < 0)
                r = fail(why, whylen, "remount read-only", NEWROOT, errno);
        if (r < 0) {
                /* Half built: gone again, and each init builds its own root (and meets the
                 * same failure, which its request then reports). */
                (void)umount2(NEWROOT, MNT_DETACH);
                return r;
        }
        template_ready = true;
        prune_host_mounts();
        return 0;
}

/* ---- each sandbox's root ------------------------------------------------------------- */

int sb_setup_root(const struct sb_limits *l, char *err, size_t errlen)
{
        int r;
        /* Nothing we mount may propagate back to the host. */
        if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
                return fail(err, errlen, "make-rprivate", "/", errno);
        if (template_ready) {
                /* The bind's top is ours (a copied mount is locked and pivot_root refuses it);
                 * below it the template's mounts stay locked and read-only. */
                if (mount(NEWROOT, NEWROOT, NULL, MS_BIND | MS_REC, NULL) < 0)
                        return fail(err, errlen, "bind the template", NEWROOT, errno);
        } else if ((r = build_shared_parts(err, errlen)) < 0) {
                return r;
        }
        if (mount("proc", NEWROOT "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
                return fail(err, errlen, "mount proc", NEWROOT "/proc", errno);
        char opts[96];
        snprintf(opts, sizeof(opts), "size=%lum,nr_inodes=%u,mode=1777", l->tmp_size_mb, l->tmp_inodes);
        if (mount("tmpfs", NEWROOT "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, opts) < 0)
                return fail(err, errlen, "mount tmpfs", NEWROOT "/tmp", errno);

        /* pivot_root(".", ".") stacks the old root under the new one; detaching it leaves
         * nothing of the host reachable but the binds above. */
        if (chdir(NEWROOT) < 0)
                return fail(err, errlen, "chdir", NEWROOT, errno);
        if (syscall(SYS_pivot_root, ".", ".") < 0)
                return fail(err, errlen, "pivot_root", NEWROOT, errno);
        if (umount2(".", MNT_DETACH) < 0)
                return fail(err, errlen, "umount old root", "/", errno);
        if (chdir("/") < 0)
                return fail(err, errlen, "chdir", "/", errno);
        if (template_ready) {
                /* Read-only since the factory made it so, and locked so in this namespace. */
                struct statvfs sv;
                if (statvfs("/", &sv) < 0)
                        return fail(err, errlen, "statvfs", "/", errno);
                if (!(sv.f_flag & ST_RDONLY))
                        return fail(err, errlen, "the template's root", "/", EROFS);
                return 0;
        }
        if (mount(NULL, "/", NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) < 0)
                return fail(err, errlen, "remount read-only", "/", errno);
        return 0;
}
