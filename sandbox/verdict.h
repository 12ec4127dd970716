/* verdict.h — what the parent collected from a run, and the decision made from it. */
#ifndef PYEXEC_VERDICT_H
#define PYEXEC_VERDICT_H

#include <stdbool.h>

#include "sandbox.h"

struct sb_run_facts {
        struct sb_outcome *out;  /* stdout/stderr already filled in by the collector */
        struct sbuf frame;       /* the result channel's bytes */
        struct sbuf setup_err;   /* non-empty: the sandbox broke */
        struct sbuf status;      /* init's struct sb_init_report */
        bool frame_overflowed;
        bool deadline_hit;       /* the worker killed the sandbox at the wall-clock limit */
        bool cpu_limit_hit;      /* ... or when all its processes together used up the CPU limit */
        bool oom_killed;         /* the memory cgroup's OOM killer fired */
        long long cgroup_peak;   /* the memory cgroup's peak use in bytes, -1 if unknown */
        long long cgroup_cpu_ms; /* CPU time of all the request's processes, -1 if unknown */
};

/* Sets out->status, message, traceback, result and usage from the facts. */
void sb_decide(const struct sb_limits *l, struct sb_run_facts *facts);

#endif
