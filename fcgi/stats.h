/* stats.h — the pool's shared counters, and their Prometheus rendering.
 *
 * One anonymous MAP_SHARED page set made by the master before it forks: workers count their
 * requests and mark themselves busy or idle, the master records respawns and worker pids, and
 * the monitor process renders it all for /metrics and decides /health. Counters are updated
 * with atomic adds; a reader may see one request counted in one series and not yet in the
 * next, which Prometheus tolerates. */
#ifndef PYEXEC_STATS_H
#define PYEXEC_STATS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "keys.h"
#include "sandbox.h"

#define POOL_MAX_SLOTS 512 /* two generations of up to 256 workers during a reload */
_Static_assert(POOL_MAX_SLOTS <= SB_ID_SLOT_PROBE, "every pool slot needs host ids of its own (sandbox.h)");
#define STATS_LATENCY_BUCKETS 12
/* What /health and the start-up log say when anyone who reaches the service may run code. */
#define STATS_OPEN_WARNING                                                                             \
        "listening beyond loopback with no api_keys_file: anyone who can reach this service runs code " \
        "on it (see README, Deploy: API keys)"
#define STATS_KEYS_MAX KEYS_MAX /* key ids with counters of their own, over the pool's life */

enum worker_state { SLOT_FREE, SLOT_STARTING, SLOT_IDLE, SLOT_BUSY };

/* The keys in force, written by the master (at start and each reload) and read by the
 * monitor's authenticator (auth.h): a seqlock, as the master may rewrite it mid-read. */
struct key_table {
        uint32_t seq;       /* odd while the master writes */
        uint32_t enabled;   /* a keys file is configured: code runs only with a key */
        uint32_t exposed;   /* nginx listens beyond loopback (serve.sh's --exposed) */
        struct key_set set;
};

/* One key id's answers. Slots are claimed by the master only (when a key set is published), so
 * no two slots ever hold one id; a key removed by a reload keeps its counters. */
struct key_counters {
        uint32_t ready;     /* id is written */
        char id[KEY_ID_MAX + 1];
        uint64_t requests[SB_ERROR_KINDS_MAX + 1];
};

struct pool_stats {
        uint64_t requests[SB_ERROR_KINDS_MAX + 1]; /* by error kind (errors.h), then "other"; no key */
        uint64_t latency[STATS_LATENCY_BUCKETS]; /* /execute answers, not cumulative */
        uint64_t latency_sum_ms;
        uint64_t respawns;
        uint64_t sandbox_failures;               /* sandboxes that could not be set up */
        uint64_t warm_fallbacks;                 /* scripts run cold because warm failed */
        uint64_t streams_aborted;                /* streaming clients that went away mid-run */
        uint64_t phase_us[SB_PHASE_COUNT];       /* the workers' sandboxes, by phase (sandbox.h) */
        int32_t sandbox_ok;
        char sandbox_problem[512];
        uint32_t draining;
        struct {                                 /* for /runtime; set by the master */
                char cgroups[8];                 /* "v1" or "none" */
                char cgroups_problem[256];
                char mode[8];                    /* "warm" or "cold" */
                uint32_t workers;
                struct sb_limits limits;
                uint64_t body_max_bytes;         /* the service's, not a sandbox limit */
                /* What scripts find installed, as JSON members ("python": ..., "packages":
                 * {...}), from sb_inventory() at start; empty when it could not run. Written
                 * before the monitor starts and never again, so read without locking. */
                char inventory[4096];
        } runtime;
        struct key_table keys;
        struct key_counters by_key[STATS_KEYS_MAX];
        struct {
                int32_t pid;
                uint32_t state;      /* enum worker_state */
                uint32_t generation; /* bumped by each reload */
        } slots[POOL_MAX_SLOTS];
};

/* Maps the shared counters (zeroed). NULL on failure. */
struct pool_stats *stats_create(void);

/* Counts one answer of the given error_kind ("ok" for success); ms > = 0 adds an /execute
 * latency sample. */
void stats_count(struct pool_stats *st, const char *kind, long long ms);
/* The same, for a request made with the key key_id (NULL or "": none). An id that has no
 * counters (never published, or past STATS_KEYS_MAX) is counted as no key. */
void stats_count_key(struct pool_stats *st, const char *key_id, const char *kind, long long ms);

/* Gives every key of set a counter slot, if it has none yet (the master, single writer). */
void stats_register_keys(struct pool_stats *st, const struct key_set *set);

void stats_add(uint64_t *counter, uint64_t n);
void stats_set_state(struct pool_stats *st, int slot, enum worker_state s);

/* Workers by state, over the live slots. */
void stats_workers(const struct pool_stats *st, unsigned *idle, unsigned *busy, unsigned *starting);

/* The pool as it runs, for GET /runtime: {"cgroups", "mode", "workers", "python", "packages",
 * "limits": {...}, "features": [...]} (nginx/openapi.json, schema Runtime). */
int stats_runtime(const struct pool_stats *st, struct sbuf *body);

/* Keeps sb_inventory()'s JSON text for stats_runtime(), after checking its shape: an object
 * with "python" a string and "packages" an object of strings, nothing else. 0, or -EINVAL
 * (another shape), -E2BIG (does not fit) or -ENOMEM, with err set; st is left as it was. */
int stats_set_inventory(struct pool_stats *st, const char *json, size_t len, char *err, size_t errlen);

/* The pool's health as the API's body ({"status": "healthy"|"ok"} or {"status": "unhealthy",
 * "reason"}): healthy when sandboxes work, a worker is up and the pool is not shutting down.
 * Returns the HTTP status, 200 or 503. detail (?detail=1): when nginx listens beyond loopback
 * with no keys file, the body also has "warning" saying so. Without it the healthy answer is
 * exactly the seeds' services' (their clients and probes may compare it whole). */
int stats_health(const struct pool_stats *st, bool healthz, bool detail, struct sbuf *body);

/* Appends the Prometheus text exposition of everything. */
int stats_render(const struct pool_stats *st, struct sbuf *out);

#endif
