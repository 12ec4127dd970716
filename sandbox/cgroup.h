/* cgroup.h — per-request memory, pids and CPU-accounting cgroups (v1 or v2), where the machine allows them. */
#ifndef PYEXEC_CGROUP_H
#define PYEXEC_CGROUP_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "sandbox.h"

enum { SB_CG_MEMORY, SB_CG_PIDS, SB_CG_CPUACCT, SB_CG_COUNT };

struct sb_cgroup_slot;

/* One directory per v1 hierarchy (memory, pids, cpuacct), or one in the unified hierarchy
 * (v2: path[0] only, in the role of all three). */
struct sb_cgroup {
        char path[SB_CG_COUNT][PATH_MAX];
        int dir_fd[SB_CG_COUNT]; /* each directory (O_PATH): its files opened relative to it */
        int count;        /* directories in path */
        int version;      /* 1 or 2 */
        int cpu_usage_fd; /* cpuacct.usage (v1) or cpu.stat (v2), read while the script runs */
        bool active;
        struct sb_cgroup_slot *slot; /* lent by this slot (sb_cgroup_borrow()), else made for one sandbox */
        long long cpu_base_us;       /* CPU time counted before this sandbox's run began */
        long long oom_kills_base;    /* OOM kills counted before this sandbox was lent the cgroup */
        bool peak_known;             /* the memory peak read covers this sandbox alone */
};

/* Cgroups made once and lent to one sandbox at a time: a worker keeps one per interpreter tier
 * (whose forker lives in it, so that its forks are born there) and one for cold sandboxes. */
struct sb_cgroup_slot {
        struct sb_cgroup cg;
        unsigned long long memory_limit; /* as last written */
        unsigned pids_limit;
        int peak_fd;                     /* once made, v2: memory.peak, open to be reset (Linux 6.12 on), or -1 */
        bool made, lent;
};

/* Creates the request's cgroups with their limits. -errno (and err) when cgroups cannot be
 * used on this machine or this one could not be made; *cg then needs no destroy. */
int sb_cgroup_create(struct sb_cgroup *cg, const struct sb_limits *l, char *err, size_t errlen);
/* Lends s's cgroups (made at the first call) to one sandbox, with l's limits, the memory peak
 * reset and the OOM kills so far counted out; sb_cgroup_destroy() gives them back. Every process
 * of the sandbox they were last lent to must be gone. 0, or -errno with err set. */
int sb_cgroup_borrow(struct sb_cgroup_slot *s, struct sb_cgroup *cg, const struct sb_limits *l, char *err,
                     size_t errlen);
/* Removes s's cgroups (waiting a moment for a process that is leaving them). */
void sb_cgroup_slot_free(struct sb_cgroup_slot *s);
/* The run begins: CPU time from here on is the sandbox's (sb_cgroup_cpu_ms()). */
void sb_cgroup_begin_run(struct sb_cgroup *cg);
/* Lowers the memory and pids limits to l's (a job's own limits, each at most the ones the
 * cgroup was made with). 0 or -errno with err set. */
int sb_cgroup_tighten(struct sb_cgroup *cg, const struct sb_limits *l, char *err, size_t errlen);
/* Opens the cgroups' cgroup.procs files (returns how many, or -errno): for moving a cold
 * sandbox's init in before it starts, and for a tier's forker to move itself in (once per slot)
 * before it forks a warm script's process there. */
int sb_cgroup_open_procs(const struct sb_cgroup *cg, int fds[SB_CG_COUNT]);
/* Moves pid (0: the caller) into the cgroups whose cgroup.procs files fds[0..n) are. */
int sb_cgroup_move(const int *fds, int n, pid_t pid);
/* Whether the kernel OOM-killed anything in it, and its peak memory use (-1 if unknown). */
void sb_cgroup_stats(const struct sb_cgroup *cg, bool *oom_killed, long long *peak_bytes);
/* CPU time used by every process of the request so far, in ms; -1 if unknown. */
long long sb_cgroup_cpu_ms(const struct sb_cgroup *cg);
/* Removes the cgroups, or gives a slot's back; call once every process in them is gone. */
void sb_cgroup_destroy(struct sb_cgroup *cg);
/* 1 or 2 once a cgroup has been made in this process, else 0. */
int sb_cgroup_version(void);
/* Removes the cgroups left by processes that are gone (a worker killed with sandboxes
 * prepared, or one that left while idle). */
void sb_cgroup_remove_stale(void);

#endif
