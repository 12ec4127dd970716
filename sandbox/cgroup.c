/* cgroup.c — a memory, pids and cpuacct cgroup for each sandbox, where the machine allows it.
 *
 * rlimits bound each process; a cgroup bounds the sandbox as a whole (64 processes that each
 * stay under RLIMIT_AS could still take 64 times the memory, and each 10 s of CPU). The
 * cpuacct cgroup counts the CPU time of all of them, which the worker checks against the
 * request's CPU limit while it runs (sandbox.c). The cgroups sit in the v1 "memory", "pids" and
 * "cpuacct" hierarchies, below the worker's own cgroup (so a container's or a systemd unit's
 * limits still apply above it). The memory limit covers the script's memory and its /tmp
 * (tmpfs pages are charged to their writer), with swap use forbidden; the oom_kill counter
 * tells an OOM kill from any other SIGKILL.
 *
 * Slots. A worker makes its cgroups once per interpreter tier, and once for cold sandboxes, and
 * lends them to one sandbox after another (sb_cgroup_borrow()), because moving a process into a
 * cgroup waits for an RCU grace period (the kernel's cgroup_threadgroup_rwsem, taken for every
 * move), and making and removing three cgroups per request cost CPU besides: with a cgroup per
 * request, a pool of 4 workers answered pandas at c=4 15% slower than one without cgroups. A
 * tier's forker moves itself into its slot once (zygote-main.c), so each script process is born
 * there and nothing moves per request; cold, init is still moved in per request. A slot is lent
 * again only once every process of the last sandbox is gone (its PID namespace died with init),
 * and then with the request's limits written where they differ, the memory peak reset, and the
 * OOM kills and CPU time so far counted out (oom_kills_base, cpu_base_us): nothing of one
 * request's use reaches the next (tests/test_cgroup_reuse.py). What a slot can keep is page
 * cache its last script read in, charged to it and reclaimed under its limit like any cache.
 *
 * cgroup v2 (the unified hierarchy) works the same with one directory per request: memory.max
 * (plus /tmp and kernel slack), memory.swap.max 0, memory.oom.group 1 (an OOM kill ends the
 * whole sandbox), pids.max, and cpu.stat's usage_usec for the CPU time. v2 keeps processes
 * only in leaves once a cgroup hands controllers to its children, so the pool's own
 * processes are first moved from its cgroup into <own>/pool (a systemd unit's, with
 * Delegate=yes, or a container's own cgroup namespace).
 *
 * Where neither works (no hierarchy, or a read-only one) sb_cgroup_create() says why, and
 * the pool refuses scripts unless require_cgroups = 0 lets them run on rlimits alone. */
#define _GNU_SOURCE
#include "cgroup.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

#define V1_ROOT "/sys/fs/cgroup"
#define CGROUP2_SUPER_MAGIC 0x63677270
/* Kernel memory (page tables, socket buffers, dentries) is charged too; leave it room. */
#define KERNEL_SLACK_MB 64

static const char *const controllers[SB_CG_COUNT] = { "memory", "pids", "cpuacct" };

/* The worker's own cgroup in a v1 hierarchy, from /proc/self/cgroup ("4:memory:/a/b"). */
static int own_v1_path(const char *controller, char *out, size_t outlen)
{
        FILE *f = fopen("/proc/self/cgroup", "re");
        if (!f)
                return -errno;
        char line[1024];
        int r = -ENOENT;
        size_t clen = strlen(controller);
        while (fgets(line, sizeof(line), f)) {
                char *a = strchr(line, ':');
                char *b = a ? strchr(a + 1, ':') : NULL;
                if (!b)
                        continue;
                /* The controller list may name several ("cpu,cpuacct"). */
                bool match = false;
                for (char *p = a + 1; p < b;) {
                        char *comma = memchr(p, ',', (size_t)(b - p));
                        char *e = comma ? comma : b;
                        if ((size_t)(e - p) == clen && memcmp(p, controller, clen) == 0)
                                match = true;
                        p = e + 1;
                }
                if (!match)
                        continue;
                b[strcspn(b, "\n")] = '\0';
                const char *rel = b + 1;
                if (strcmp(rel, "/") == 0)
                        rel = "";
                snprintf(out, outlen, V1_ROOT "/%s%s", controller, rel);
                r = 0;
                break;
        }
        fclose(f);
        return r;
}

static int write_text(const char *dir, const char *file, const char *text)
{
        char path[PATH_MAX + 64];
        snprintf(path, sizeof(path), "%s/%s", dir, file);
        return write_text_file(path, 0, text);
}

/* A request's cgroup files are opened relative to its directory: by full path, each of the
 * ~10 opens, mkdirs and rmdirs per request walked the 8 or 9 components of the hierarchy's
 * path again (1.7% of all CPU at hello world, c=4). */
static int write_text_at(int dir_fd, const char *file, const char *text)
{
        int fd = openat(dir_fd, file, O_WRONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        int r = write_all(fd, text, strlen(text));
        (void)close(fd);
        return r;
}

static long long read_number(int dir_fd, const char *file, const char *key)
{
        char buf[4096];
        int fd = openat(dir_fd, file, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -1;
        ssize_t n = read_all(fd, buf, sizeof(buf) - 1);
        (void)close(fd);
        if (n <= 0)
                return -1;
        buf[n] = '\0';
        if (!key)
                return atoll(buf);
        size_t klen = strlen(key);
        for (char *line = buf; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL)
                if (strncmp(line, key, klen) == 0 && line[klen] == ' ')
                        return atoll(line + klen + 1);
        return -1;
}

/* The parents ("<own>/pyexec") are made once per process and left for the next request:
 * one per v1 hierarchy (memory, pids, cpuacct), or one in the unified hierarchy. */
static char parents[SB_CG_COUNT][PATH_MAX - 64]; /* room for the per-request name */
static int parent_fds[SB_CG_COUNT] = { -1, -1, -1 }; /* each of them (O_PATH) */
static int parents_state; /* 0 unknown, 1 ready, -errno unavailable */
static int version;       /* 1 or 2, once ready */
static int nparents;

/* The caller's cgroup in the unified hierarchy, from /proc/self/cgroup's "0::/a/b" line. */
static int own_v2_path(char *out, size_t outlen)
{
        FILE *f = fopen("/proc/self/cgroup", "re");
        if (!f)
                return -errno;
        char line[1024];
        int r = -ENOENT;
        while (r < 0 && fgets(line, sizeof(line), f)) {
                if (strncmp(line, "0::/", 4) != 0)
                        continue;
                line[strcspn(line, "\n")] = '\0';
                snprintf(out, outlen, V1_ROOT "%s", strcmp(line + 3, "/") == 0 ? "" : line + 3);
                r = 0;
        }
        fclose(f);
        return r;
}

/* Moves every process of own (this one, and in a systemd unit or a container its siblings:
 * nginx, serve.sh) into own/pool: v2 lets a cgroup hand controllers to its children only once
 * it holds no process itself. The real root is exempt, and its kernel threads cannot move. */
static int move_processes_to_leaf(const char *own)
{
        char path[PATH_MAX];
        snprintf(path, sizeof(path), "%s/cgroup.type", own);
        if (access(path, F_OK) < 0)
                return 0; /* the root of the hierarchy */
        snprintf(path, sizeof(path), "%s/pool", own);
        if (mkdir(path, 0755) < 0 && errno != EEXIST)
                return -errno;
        for (int round = 0; round < 10; round++) {
                snprintf(path, sizeof(path), "%s/cgroup.procs", own);
                FILE *f = fopen(path, "re");
                if (!f)
                        return -errno;
                char pid[32];
                int moved = 0;
                while (fgets(pid, sizeof(pid), f)) {
                        pid[strcspn(pid, "\n")] = '\0';
                        snprintf(path, sizeof(path), "%s/pool/cgroup.procs", own);
                        int r = write_text_file(path, 0, pid);
                        if (r < 0 && r != -ESRCH)
                                break;
                        moved++;
                }
                fclose(f);
                if (moved == 0)
                        return 0;
        }
        return -EBUSY; /* processes keep appearing: something else forks in our cgroup */
}

static int prepare_v2(void)
{
        char own[PATH_MAX - 128];
        int r = own_v2_path(own, sizeof(own));
        if (r == 0)
                r = move_processes_to_leaf(own);
        if (r == 0)
                r = write_text(own, "cgroup.subtree_control", "+memory +pids");
        int w = r == 0 ? snprintf(parents[0], sizeof(parents[0]), "%s/pyexec", own) : 0;
        if (r == 0 && (w < 0 || (size_t)w >= sizeof(parents[0])))
                r = -ENAMETOOLONG;
        if (r == 0 && mkdir(parents[0], 0755) < 0 && errno != EEXIST)
                r = -errno;
        if (r == 0)
                r = write_text(parents[0], "cgroup.subtree_control", "+memory +pids");
        if (r == 0 && (parent_fds[0] = open(parents[0], O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0)
                r = -errno;
        version = 2;
        nparents = 1;
        return r;
}

int sb_cgroup_version(void)
{
        return parents_state > 0 ? version : 0;
}

static bool unified_hierarchy(void)
{
        struct statfs sf;
        return statfs(V1_ROOT, &sf) == 0 && sf.f_type == CGROUP2_SUPER_MAGIC;
}

static int prepare_parents(void)
{
        if (parents_state != 0)
                return parents_state > 0 ? 0 : parents_state;
        if (unified_hierarchy()) {
                int r = prepare_v2();
                parents_state = r == 0 ? 1 : r;
                return r;
        }
        int r = 0;
        version = 1;
        nparents = SB_CG_COUNT;
        for (int i = 0; i < SB_CG_COUNT && r == 0; i++) {
                char own[PATH_MAX - 128];
                r = own_v1_path(controllers[i], own, sizeof(own));
                if (r < 0)
                        break;
                int w = snprintf(parents[i], sizeof(parents[i]), "%s/pyexec", own);
                if (w < 0 || (size_t)w >= sizeof(parents[i])) {
                        r = -ENAMETOOLONG;
                        break;
                }
                if (mkdir(parents[i], 0755) < 0 && errno != EEXIST)
                        r = -errno;
                else if ((parent_fds[i] = open(parents[i], O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0)
                        r = -errno;
        }
        parents_state = r == 0 ? 1 : r;
        return r;
}

/* What a request may use: its memory and its /tmp (tmpfs pages are charged to their writer),
 * plus kernel slack. */
static unsigned long long memory_bytes(const struct sb_limits *l)
{
        return ((unsigned long long)l->memory_mb + l->tmp_size_mb + KERNEL_SLACK_MB) << 20;
}

/* The script's processes plus one: init, or a slot's forker. */
static unsigned pids_limit(const struct sb_limits *l)
{
        return l->max_processes + 1;
}

/* A limit file, with its name in err when it cannot be written; absent_ok: ENOENT is fine
 * (swap files where swap accounting is off). */
static int set_limit(int dir_fd, const char *file, unsigned long long value, bool absent_ok, char *err,
                     size_t errlen)
{
        char v[32];
        snprintf(v, sizeof(v), "%llu", value);
        int r = write_text_at(dir_fd, file, v);
        if (r == -ENOENT && absent_ok)
                return 0;
        if (r < 0)
                snprintf(err, errlen, "%s: %s", file, strerror(-r));
        return r;
}

/* The file the CPU time is read from while the script runs (sb_cgroup_cpu_ms()). */
static int open_usage(struct sb_cgroup *cg, int dir, const char *file, char *err, size_t errlen)
{
        if ((cg->cpu_usage_fd = openat(cg->dir_fd[dir], file, O_RDONLY | O_CLOEXEC)) < 0) {
                int r = -errno;
                snprintf(err, errlen, "%s/%s: %s", cg->path[dir], file, strerror(-r));
                return r;
        }
        return 0;
}

static int set_limits_v1(struct sb_cgroup *cg, const struct sb_limits *l, char *err, size_t errlen)
{
        int mem = cg->dir_fd[SB_CG_MEMORY];
        int r;
        /* memory+swap equal to memory: no swap. */
        if ((r = set_limit(mem, "memory.limit_in_bytes", memory_bytes(l), false, err, errlen)) < 0 ||
            (r = set_limit(mem, "memory.memsw.limit_in_bytes", memory_bytes(l), true, err, errlen)) < 0)
                return r;
        (void)write_text_at(mem, "memory.swappiness", "0");
        if ((r = set_limit(cg->dir_fd[SB_CG_PIDS], "pids.max", pids_limit(l), false, err, errlen)) < 0)
                return r;
        return open_usage(cg, SB_CG_CPUACCT, "cpuacct.usage", err, errlen);
}

static int set_limits_v2(struct sb_cgroup *cg, const struct sb_limits *l, char *err, size_t errlen)
{
        int dir = cg->dir_fd[0];
        int r;
        /* An OOM kill takes the whole sandbox, as the kill of its init would. */
        if ((r = set_limit(dir, "memory.max", memory_bytes(l), false, err, errlen)) < 0 ||
            (r = set_limit(dir, "memory.swap.max", 0, true, err, errlen)) < 0 ||
            (r = set_limit(dir, "memory.oom.group", 1, false, err, errlen)) < 0 ||
            (r = set_limit(dir, "pids.max", pids_limit(l), false, err, errlen)) < 0)
                return r;
        return open_usage(cg, 0, "cpu.stat", err, errlen);
}

/* Writes the memory limit of a cgroup whose limit is now `from`. v1 keeps memory+swap at or
 * above memory: raised, memory+swap goes first; lowered, memory does. */
static int set_memory_limit(const struct sb_cgroup *cg, unsigned long long from, unsigned long long to, char *err,
                            size_t errlen)
{
        int mem = cg->dir_fd[SB_CG_MEMORY];
        if (cg->version == 2)
                return set_limit(mem, "memory.max", to, false, err, errlen);
        const char *first = to > from ? "memory.memsw.limit_in_bytes" : "memory.limit_in_bytes";
        const char *second = to > from ? "memory.limit_in_bytes" : "memory.memsw.limit_in_bytes";
        int r = set_limit(mem, first, to, to > from, err, errlen);
        return r < 0 ? r : set_limit(mem, second, to, to <= from, err, errlen);
}

static int pids_dir(const struct sb_cgroup *cg)
{
        return cg->dir_fd[cg->version == 2 ? 0 : SB_CG_PIDS];
}

/* Writes l's memory and pids limits where they differ from the ones the cgroup has (from,
 * pids_from); a slot then remembers them. */
static int set_limits_from(struct sb_cgroup *cg, unsigned long long from, unsigned pids_from,
                           const struct sb_limits *l, char *err, size_t errlen)
{
        int r = 0;
        if (memory_bytes(l) != from && (r = set_memory_limit(cg, from, memory_bytes(l), err, errlen)) < 0)
                return r;
        if (cg->slot)
                cg->slot->memory_limit = memory_bytes(l);
        if (pids_limit(l) != pids_from && (r = set_limit(pids_dir(cg), "pids.max", pids_limit(l), false, err, errlen)) < 0)
                return r;
        if (cg->slot)
                cg->slot->pids_limit = pids_limit(l);
        return 0;
}

int sb_cgroup_tighten(struct sb_cgroup *cg, const struct sb_limits *l, char *err, size_t errlen)
{
        if (!cg->active)
                return 0;
        /* Lowered: from anything above (a slot's own figures once it has them). */
        return set_limits_from(cg, cg->slot ? cg->slot->memory_limit : ~0ULL, cg->slot ? cg->slot->pids_limit : ~0U,
                               l, err, errlen);
}

int sb_cgroup_create(struct sb_cgroup *cg, const struct sb_limits *l, char *err, size_t errlen)
{
        static unsigned seq;
        memset(cg, 0, sizeof(*cg));
        cg->cpu_usage_fd = -1;
        cg->peak_known = true;
        for (int i = 0; i < SB_CG_COUNT; i++)
                cg->dir_fd[i] = -1;
        int r = prepare_parents();
        if (r < 0) {
                snprintf(err, errlen, "no writable cgroup v2 hierarchy with memory and pids, nor v1 memory, pids and "
                                      "cpuacct hierarchies: %s", strerror(-r));
                return r;
        }
        seq++;
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        long long stamp = (long long)now.tv_sec * 1000000000LL + now.tv_nsec;
        /* <pid>-<seq>-<ns>: a later process with a recycled pid never meets a leftover. */
        char name[64];
        snprintf(name, sizeof(name), "%d-%u-%lld", (int)getpid(), seq, stamp);
        for (int i = 0; i < nparents; i++) {
                int w = snprintf(cg->path[i], sizeof(cg->path[i]), "%s/%s", parents[i], name);
                if (w < 0 || (size_t)w >= sizeof(cg->path[i]) || mkdirat(parent_fds[i], name, 0755) < 0) {
                        r = w < 0 || (size_t)w >= sizeof(cg->path[i]) ? -ENAMETOOLONG : -errno;
                        snprintf(err, errlen, "mkdir %s: %s", cg->path[i], strerror(-r));
                        cg->path[i][0] = '\0';
                        goto fail;
                }
                if ((cg->dir_fd[i] = openat(parent_fds[i], name, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0) {
                        r = -errno;
                        snprintf(err, errlen, "open %s: %s", cg->path[i], strerror(-r));
                        goto fail;
                }
        }
        cg->count = nparents;
        cg->version = version;
        r = version == 2 ? set_limits_v2(cg, l, err, errlen) : set_limits_v1(cg, l, err, errlen);
        if (r < 0)
                goto fail;
        cg->active = true;
        return 0;
fail:
        sb_cgroup_destroy(cg);
        return r;
}

int sb_cgroup_open_procs(const struct sb_cgroup *cg, int fds[SB_CG_COUNT])
{
        for (int i = 0; i < SB_CG_COUNT; i++)
                fds[i] = -1;
        for (int i = 0; i < cg->count; i++) {
                if ((fds[i] = openat(cg->dir_fd[i], "cgroup.procs", O_WRONLY | O_CLOEXEC)) < 0) {
                        int r = -errno;
                        for (int k = 0; k < i; k++)
                                (void)close(fds[k]);
                        return r;
                }
        }
        return cg->count;
}

int sb_cgroup_move(const int *fds, int n, pid_t pid)
{
        char v[32];
        int len = snprintf(v, sizeof(v), "%d", (int)pid); /* "0" is the writer itself */
        for (int i = 0; i < n; i++) {
                ssize_t w = write(fds[i], v, (size_t)len);
                if (w != len)
                        return w < 0 ? -errno : -EIO; /* a short write leaves errno as it was */
        }
        return 0;
}

static long long oom_kills(const struct sb_cgroup *cg)
{
        return read_number(cg->dir_fd[SB_CG_MEMORY], cg->version == 2 ? "memory.events" : "memory.oom_control",
                           "oom_kill");
}

void sb_cgroup_stats(const struct sb_cgroup *cg, bool *oom_killed, long long *peak_bytes)
{
        *oom_killed = oom_kills(cg) > cg->oom_kills_base;
        *peak_bytes = -1;
        if (!cg->peak_known)
                return;
        int peak_fd = cg->slot ? cg->slot->peak_fd : -1;
        char buf[32];
        ssize_t n = peak_fd >= 0 ? pread(peak_fd, buf, sizeof(buf) - 1, 0) : -1;
        if (n > 0) {
                buf[n] = '\0';
                *peak_bytes = atoll(buf);
        } else /* memory.peak: kernels from 5.19 on; before, unknown (-1). */
                *peak_bytes = read_number(cg->dir_fd[SB_CG_MEMORY],
                                          cg->version == 2 ? "memory.peak" : "memory.max_usage_in_bytes", NULL);
}

/* CPU time counted in the cgroup so far, in µs; -1 if unknown. */
static long long cpu_us(const struct sb_cgroup *cg)
{
        char buf[512];
        ssize_t n = cg->cpu_usage_fd >= 0 ? pread(cg->cpu_usage_fd, buf, sizeof(buf) - 1, 0) : -1;
        if (n <= 0)
                return -1;
        buf[n] = '\0';
        if (cg->version == 1)
                return atoll(buf) / 1000; /* cpuacct.usage: ns */
        const char *usage = strstr(buf, "usage_usec ");
        return usage ? atoll(usage + strlen("usage_usec ")) : -1;
}

void sb_cgroup_begin_run(struct sb_cgroup *cg)
{
        long long now = cg->active ? cpu_us(cg) : -1;
        cg->cpu_base_us = now > 0 ? now : 0;
}

long long sb_cgroup_cpu_ms(const struct sb_cgroup *cg)
{
        long long used = cpu_us(cg);
        return used < 0 ? -1 : (used - cg->cpu_base_us) / 1000;
}

void sb_cgroup_destroy(struct sb_cgroup *cg)
{
        if (cg->slot) { /* lent: given back, with its descriptors (this copy forgets them) */
                cg->slot->lent = false;
                cg->slot = NULL;
                cg->active = false;
                cg->cpu_usage_fd = -1;
                for (int i = 0; i < SB_CG_COUNT; i++) {
                        cg->dir_fd[i] = -1;
                        cg->path[i][0] = '\0';
                }
                return;
        }
        if (cg->active && cg->cpu_usage_fd >= 0)
                (void)close(cg->cpu_usage_fd);
        cg->cpu_usage_fd = -1;
        for (int i = 0; i < SB_CG_COUNT; i++) {
                if (!cg->path[i][0])
                        continue; /* not made (a zeroed struct: no descriptor either) */
                if (cg->dir_fd[i] >= 0)
                        (void)close(cg->dir_fd[i]);
                cg->dir_fd[i] = -1;
                const char *name = strrchr(cg->path[i], '/') + 1; /* in parents[i] */
                /* Every task is gone by now (the PID namespace died with init); a memory cgroup
                 * can still be busy for a moment while its charges are moved to the parent. */
                for (int tries = 0; tries < 50; tries++) {
                        if (unlinkat(parent_fds[i], name, AT_REMOVEDIR) == 0 || errno == ENOENT)
                                break;
                        if (errno != EBUSY)
                                break;
                        usleep(2000);
                }
                cg->path[i][0] = '\0';
        }
        cg->active = false;
}

/* ---- slots ------------------------------------------------------------------------------ */

/* The slot's first loan: its cgroups made with l's limits. v2's memory.peak is kept open for
 * writing: Linux 6.12 on resets the peak that descriptor reads at each loan; before, the file is
 * read-only and only the first loan's peak is known. */
static int make_slot(struct sb_cgroup_slot *s, const struct sb_limits *l, char *err, size_t errlen)
{
        int r = sb_cgroup_create(&s->cg, l, err, errlen);
        if (r < 0)
                return r;
        s->memory_limit = memory_bytes(l);
        s->pids_limit = pids_limit(l);
        s->peak_fd = s->cg.version == 2 ? openat(s->cg.dir_fd[0], "memory.peak", O_RDWR | O_CLOEXEC) : -1;
        s->made = true;
        return 0;
}

/* The peak from now on: 0 when reset (or just made), -1 when it cannot be. */
static int reset_peak(struct sb_cgroup_slot *s, bool made_now)
{
        if (made_now)
                return 0;
        if (s->cg.version == 1)
                return write_text_at(s->cg.dir_fd[SB_CG_MEMORY], "memory.max_usage_in_bytes", "0") == 0 ? 0 : -1;
        return s->peak_fd >= 0 && pwrite(s->peak_fd, "reset\n", 6, 0) == 6 ? 0 : -1;
}

int sb_cgroup_borrow(struct sb_cgroup_slot *s, struct sb_cgroup *cg, const struct sb_limits *l, char *err,
                     size_t errlen)
{
        if (s->lent) { /* the provider lends each slot to one sandbox at a time: never here */
                snprintf(err, errlen, "cgroup slot %s is lent already", s->cg.path[0]);
                return -EBUSY;
        }
        bool made_now = !s->made;
        int r = made_now ? make_slot(s, l, err, errlen) : 0;
        if (r < 0)
                return r;
        *cg = s->cg;
        cg->slot = s;
        if (!made_now && (r = set_limits_from(cg, s->memory_limit, s->pids_limit, l, err, errlen)) < 0)
                return r;
        cg->oom_kills_base = oom_kills(cg);
        cg->peak_known = reset_peak(s, made_now) == 0;
        cg->cpu_base_us = 0;
        s->lent = true;
        return 0;
}

void sb_cgroup_slot_free(struct sb_cgroup_slot *s)
{
        if (!s->made)
                return;
        if (s->peak_fd >= 0)
                (void)close(s->peak_fd);
        sb_cgroup_destroy(&s->cg); /* made for the slot (not lent): removed, descriptors and all */
        *s = (struct sb_cgroup_slot){ 0 };
}

void sb_cgroup_remove_stale(void)
{
        if (prepare_parents() < 0)
                return;
        for (int i = 0; i < nparents; i++) {
                DIR *d = opendir(parents[i]);
                if (!d)
                        continue;
                struct dirent *e;
                while ((e = readdir(d))) {
                        char *end;
                        long pid = strtol(e->d_name, &end, 10);
                        if (end == e->d_name || *end != '-' || pid <= 0)
                                continue;
                        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
                                continue; /* its maker is alive and will remove it */
                        char path[PATH_MAX];
                        int w = snprintf(path, sizeof(path), "%s/%s", parents[i], e->d_name);
                        if (w > 0 && (size_t)w < sizeof(path))
                                (void)rmdir(path); /* EBUSY: still emptying; the next sweep gets it */
                }
                closedir(d);
        }
}
