/* config.h — the limits every request runs under, read from one file (config/pyexec.conf).
 * The same file configures the FastCGI workers and pyexec-run, so the sandbox a user debugs
 * with is the sandbox the service uses. */
#ifndef PYEXEC_CONFIG_H
#define PYEXEC_CONFIG_H

#include <stddef.h>
#include <stdio.h>

struct sb_limits {
        unsigned wall_time_s;       /* the worker kills the sandbox after this */
        unsigned cpu_time_s;        /* RLIMIT_CPU */
        unsigned long memory_mb;    /* RLIMIT_AS (and the memory cgroup where available) */
        unsigned max_processes;     /* RLIMIT_NPROC, per sandbox */
        unsigned max_open_files;    /* RLIMIT_NOFILE */
        unsigned long tmp_size_mb;  /* tmpfs size= of /tmp, and RLIMIT_FSIZE */
        unsigned tmp_inodes;        /* tmpfs nr_inodes= of /tmp */
        size_t script_max_bytes;    /* after JSON decoding */
        size_t body_max_bytes;      /* the raw HTTP body */
        size_t stdout_max_bytes;    /* kept; the rest is read and dropped */
        size_t result_max_bytes;    /* JSON text of main()'s return value */
        unsigned require_cgroups;   /* 1: no script runs where per-request cgroups cannot be made */
        unsigned uid_base;          /* first of the SB_ID_COUNT host uids/gids the sandboxes map to */
        unsigned warm;              /* 1: fork scripts from a pre-initialised interpreter; 0: execve python3 */
        unsigned prefork;           /* 1: each worker keeps a sandbox ready for its next request */
        char warm_preload[256];     /* modules the warm interpreter imports up front */
        unsigned warm_tiers;        /* 1: also keep interpreters with each prefix of warm_preload */
        unsigned workers;           /* FastCGI workers in the pool */
        unsigned queue_slots;       /* requests that may wait for a worker (nginx limit_conn) */
        unsigned queue_timeout_ms;  /* a request that waited longer is answered 503 */
        /* Not a config key: 0 (the default) gives every sandbox a network namespace of its
         * own; a worker that has one private namespace for all of its sandboxes, one at a
         * time, sets 1 (sb_network_private()). Zero is the safe side on purpose. */
        unsigned share_caller_netns;
        /* Not a config key: which pair of host ids this caller's sandboxes map to (see
         * SB_ID_SLOTS). A pool's worker slot, SB_ID_SLOT_PROBE or SB_ID_SLOT_RUN. */
        unsigned id_slot;
};

/* Every sandbox that can run at the same time as another maps its uid 0 and 1000 to host ids
 * of its own: uid_base + 2 * id_slot and the one after. The kernel keeps several budgets per
 * host uid (pipe buffers, descriptors in flight over unix sockets, epoll watches), and
 * sandboxes sharing one could drain each other's. A worker runs one script at a time, so its
 * pool slot is its id slot; the master's start-up probe and pyexec-run have slots of their own
 * (concurrent pyexec-runs share theirs). */
#define SB_ID_SLOTS 514
#define SB_ID_SLOT_PROBE 512
#define SB_ID_SLOT_RUN 513
#define SB_ID_COUNT (2 * SB_ID_SLOTS)

/* The built-in defaults (the values shipped in config/pyexec.conf). */
void sb_limits_default(struct sb_limits *l);

/* Reads "key = value" lines ('#' comments) over *l. Unknown keys and bad values are errors:
 * a typo in a limit must not silently leave the default in force. Returns 0, or -errno with a
 * message in err (at least 256 bytes). */
int sb_limits_load(struct sb_limits *l, const char *path, char *err, size_t errlen);

/* Writes every setting as "key=value" lines, one per key of the file, in its order: what the
 * pool's scripts read instead of parsing the file a second time. 0 or -errno. */
int sb_limits_print(const struct sb_limits *l, FILE *out);

/* Refuses a uid_base whose SB_ID_COUNT ids meet a user or group of the host, or a subordinate
 * id range (a rootless container's, say) in etc_dir's passwd, group, subuid and subgid (normally
 * "/etc"): a sandbox must never share a host identity with anything else. 0, or -EEXIST with
 * the clash in err. */
int sb_limits_check_ids(const struct sb_limits *l, const char *etc_dir, char *err, size_t errlen);

#endif
