/* cgroup.c — a memory and pids cgroup for each request, where the machine allows it.
 *
 * rlimits bound each process; a cgroup bounds the sandbox as a whole (64 processes that each
 * stay under RLIMIT_AS could still take 64 times the memory, and each 10 s of CPU). The
 * cpuacct cgroup counts the CPU time of all of them, which the worker checks against the
 * request's CPU limit while it runs (sandbox.c). Each request gets its own
 * cgroup in the v1 "memory" and "pids" hierarchies, created below the worker's own cgroup (so
 * a container's or a systemd unit's limits still apply above it), the sandbox's init is moved
 * in before it is allowed to start, and the cgroup is removed when the run is over. The memory
 * limit covers the script's memory and its /tmp (tmpfs pages are charged to their writer),
 * with swap use forbidden; the oom_kill counter tells an OOM kill from any other SIGKILL.
 *
 * cgroup v2 (the unified hierarchy) is not handled yet: there, and wherever the v1
 * controllers are missing or read-only, sandboxes run with rlimits alone (CPU time then per
 * process), and the worker says so once at start-up. */
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
#include <time.h>
#include <unistd.h>

#include "util.h"

#define V1_ROOT "/sys/fs/cgroup"
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

static long long read_number(const char *dir, const char *file, const char *key)
{
        char path[PATH_MAX], buf[4096];
        snprintf(path, sizeof(path), "%s/%s", dir, file);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
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

/* The parents ("<own>/pyexec") are made once per process and left for the next request. */
static char parents[SB_CG_COUNT][PATH_MAX - 64]; /* room for the per-request name */
static int parents_state; /* 0 unknown, 1 ready, -errno unavailable */

static int prepare_parents(void)
{
        if (parents_state != 0)
                return parents_state > 0 ? 0 : parents_state;
        int r = 0;
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
        }
        parents_state = r == 0 ? 1 : r;
        return r;
}

int sb_cgroup_create(struct sb_cgroup *cg, const struct sb_limits *l, char *err, size_t errlen)
{
        static unsigned seq;
        memset(cg, 0, sizeof(*cg));
        int r = prepare_parents();
        if (r < 0) {
                snprintf(err, errlen, "no writable cgroup v1 memory, pids and cpuacct hierarchies: %s", strerror(-r));
                return r;
        }
        cg->cpu_usage_fd = -1;
        seq++;
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        long long stamp = (long long)now.tv_sec * 1000000000LL + now.tv_nsec;
        for (int i = 0; i < SB_CG_COUNT; i++) {
                /* <pid>-<seq>-<ns>: a later process with a recycled pid never meets a leftover. */
                int w = snprintf(cg->path[i], sizeof(cg->path[i]), "%s/%d-%u-%lld", parents[i], (int)getpid(), seq,
                                 stamp);
                if (w < 0 || (size_t)w >= sizeof(cg->path[i])) {
                        cg->path[i][0] = '\0';
                        sb_cgroup_destroy(cg);
                        snprintf(err, errlen, "cgroup path too long");
                        return -ENAMETOOLONG;
                }
                if (mkdir(cg->path[i], 0755) < 0) {
                        r = -errno;
                        snprintf(err, errlen, "mkdir %s: %s", cg->path[i], strerror(-r));
                        cg->path[i][0] = '\0';
                        sb_cgroup_destroy(cg);
                        return r;
                }
        }
        char v[32];
        unsigned long long mem = ((unsigned long long)l->memory_mb + l->tmp_size_mb + KERNEL_SLACK_MB) << 20;
        snprintf(v, sizeof(v), "%llu", mem);
        if ((r = write_text(cg->path[SB_CG_MEMORY], "memory.limit_in_bytes", v)) < 0) {
                snprintf(err, errlen, "memory.limit_in_bytes: %s", strerror(-r));
                goto fail;
        }
        /* memory+swap equal to memory: no swap. Absent when swap accounting is off. */
        r = write_text(cg->path[SB_CG_MEMORY], "memory.memsw.limit_in_bytes", v);
        if (r < 0 && r != -ENOENT) {
                snprintf(err, errlen, "memory.memsw.limit_in_bytes: %s", strerror(-r));
                goto fail;
        }
        (void)write_text(cg->path[SB_CG_MEMORY], "memory.swappiness", "0");
        /* The script's processes plus init. */
        snprintf(v, sizeof(v), "%u", l->max_processes + 1);
        if ((r = write_text(cg->path[SB_CG_PIDS], "pids.max", v)) < 0) {
                snprintf(err, errlen, "pids.max: %s", strerror(-r));
                goto fail;
        }
        char usage[PATH_MAX + 32];
        snprintf(usage, sizeof(usage), "%s/cpuacct.usage", cg->path[SB_CG_CPUACCT]);
        if ((cg->cpu_usage_fd = open(usage, O_RDONLY | O_CLOEXEC)) < 0) {
                r = -errno;
                snprintf(err, errlen, "%s: %s", usage, strerror(-r));
                goto fail;
        }
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
        for (int i = 0; i < SB_CG_COUNT; i++) {
                char path[PATH_MAX];
                snprintf(path, sizeof(path), "%s/cgroup.procs", cg->path[i]);
                if ((fds[i] = open(path, O_WRONLY | O_CLOEXEC)) < 0) {
                        int r = -errno;
                        for (int k = 0; k < i; k++)
                                (void)close(fds[k]);
                        return r;
                }
        }
        return 0;
}

int sb_cgroup_move(const int *fds, int n, pid_t pid)
{
        char v[32];
        int len = snprintf(v, sizeof(v), "%d", (int)pid); /* "0" is the writer itself */
        for (int i = 0; i < n; i++)
                if (write(fds[i], v, (size_t)len) != len)
                        return -errno;
        return 0;
}

void sb_cgroup_stats(const struct sb_cgroup *cg, bool *oom_killed, long long *peak_bytes)
{
        long long kills = read_number(cg->path[SB_CG_MEMORY], "memory.oom_control", "oom_kill");
        *oom_killed = kills > 0;
        *peak_bytes = read_number(cg->path[SB_CG_MEMORY], "memory.max_usage_in_bytes", NULL);
}

long long sb_cgroup_cpu_ms(const struct sb_cgroup *cg)
{
        char buf[32];
        ssize_t n = cg->cpu_usage_fd >= 0 ? pread(cg->cpu_usage_fd, buf, sizeof(buf) - 1, 0) : -1;
        if (n <= 0)
                return -1;
        buf[n] = '\0';
        return atoll(buf) / 1000000;
}

void sb_cgroup_destroy(struct sb_cgroup *cg)
{
        if (cg->active && cg->cpu_usage_fd >= 0)
                (void)close(cg->cpu_usage_fd);
        cg->cpu_usage_fd = -1;
        for (int i = 0; i < SB_CG_COUNT; i++) {
                if (!cg->path[i][0])
                        continue;
                /* Every task is gone by now (the PID namespace died with init); a memory cgroup
                 * can still be busy for a moment while its charges are moved to the parent. */
                for (int tries = 0; tries < 50; tries++) {
                        if (rmdir(cg->path[i]) == 0 || errno == ENOENT)
                                break;
                        if (errno != EBUSY)
                                break;
                        usleep(2000);
                }
                cg->path[i][0] = '\0';
        }
        cg->active = false;
}

void sb_cgroup_remove_stale(void)
{
        if (prepare_parents() < 0)
                return;
        for (int i = 0; i < SB_CG_COUNT; i++) {
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
