/* stats.c — shared counters and /metrics. */
#include "stats.h"

#include <errno.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "jsontext.h"

/* requests[] by the position of the kind in sb_error_kinds (errors.h); the last counts any
 * other, which would be a bug: the worker answers with kinds of the table only. */
#define NKINDS (sb_error_kind_count + 1)
static const char *kind_name(size_t i) { return i < sb_error_kind_count ? sb_error_kinds[i].name : "other"; }


static const double bucket_le[STATS_LATENCY_BUCKETS - 1] = { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                                               0.5,   1,    2.5,   5,    10 };

struct pool_stats *stats_create(void)
{
        void *p = mmap(NULL, sizeof(struct pool_stats), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        return p == MAP_FAILED ? NULL : p;
}

void stats_add(uint64_t *counter, uint64_t n)
{
        __atomic_fetch_add(counter, n, __ATOMIC_RELAXED);
}

static size_t kind_slot(const char *kind)
{
        int i = sb_error_kind_index(kind);
        return i < 0 ? NKINDS - 1 : (size_t)i;
}

static void count_latency(struct pool_stats *st, long long ms)
{
        if (ms < 0)
                return;
        size_t b = 0;
        while (b < STATS_LATENCY_BUCKETS - 1 && (double)ms / 1000.0 > bucket_le[b])
                b++;
        stats_add(&st->latency[b], 1);
        stats_add(&st->latency_sum_ms, (uint64_t)ms);
}

void stats_count(struct pool_stats *st, const char *kind, long long ms)
{
        stats_add(&st->requests[kind_slot(kind)], 1);
        count_latency(st, ms);
}

/* The counters of key_id, or NULL. Read without a lock: a slot's id is written once, before
 * its ready flag. */
static struct key_counters *key_slot(struct pool_stats *st, const char *key_id)
{
        for (int i = 0; i < STATS_KEYS_MAX; i++) {
                struct key_counters *k = &st->by_key[i];
                if (!__atomic_load_n(&k->ready, __ATOMIC_ACQUIRE))
                        return NULL; /* slots are claimed in order: no later one is in use */
                if (strcmp(k->id, key_id) == 0)
                        return k;
        }
        return NULL;
}

void stats_count_key(struct pool_stats *st, const char *key_id, const char *kind, long long ms)
{
        struct key_counters *k = key_id && *key_id ? key_slot(st, key_id) : NULL;
        stats_add(k ? &k->requests[kind_slot(kind)] : &st->requests[kind_slot(kind)], 1);
        count_latency(st, ms); /* one histogram, over every key */
}

void stats_register_keys(struct pool_stats *st, const struct key_set *set)
{
        for (unsigned n = 0; n < set->count; n++) {
                if (key_slot(st, set->keys[n].id))
                        continue;
                for (int i = 0; i < STATS_KEYS_MAX; i++) {
                        struct key_counters *k = &st->by_key[i];
                        if (__atomic_load_n(&k->ready, __ATOMIC_RELAXED))
                                continue;
                        memcpy(k->id, set->keys[n].id, sizeof(k->id));
                        __atomic_store_n(&k->ready, 1, __ATOMIC_RELEASE);
                        break;
                }
        }
}

void stats_set_state(struct pool_stats *st, int slot, enum worker_state s)
{
        if (slot >= 0 && slot < POOL_MAX_SLOTS)
                __atomic_store_n(&st->slots[slot].state, (uint32_t)s, __ATOMIC_RELAXED);
}

void stats_workers(const struct pool_stats *st, unsigned *idle, unsigned *busy, unsigned *starting)
{
        *idle = *busy = *starting = 0;
        for (int i = 0; i < POOL_MAX_SLOTS; i++) {
                if (__atomic_load_n(&st->slots[i].pid, __ATOMIC_RELAXED) <= 0)
                        continue;
                switch (__atomic_load_n(&st->slots[i].state, __ATOMIC_RELAXED)) {
                case SLOT_IDLE: (*idle)++; break;
                case SLOT_BUSY: (*busy)++; break;
                case SLOT_STARTING: (*starting)++; break;
                default: break;
                }
        }
}

/* The request members beyond "script" that POST /execute takes (API-SPEC.md, README), so that
 * a client can tell this server from an older one without trying. Keep in step with
 * fcgi/request.c and the "Feature" enum of nginx/openapi.json. */
static const char runtime_features[] = "[\"input\", \"inputs\", \"files\", \"return_files\", \"figures\", \"limits\", \"usage\"]";

/* The server's maxima, under the names a request's "limits" member uses, then the sizes. */
static int runtime_limits(const struct pool_stats *st, struct sbuf *body)
{
        const struct sb_limits *l = &st->runtime.limits;
        return sbuf_printf(body, "{\"wall_time_s\": %u, \"cpu_time_s\": %u, \"memory_mb\": %lu, "
                                 "\"max_processes\": %u, \"max_open_files\": %u, \"stdout_max_bytes\": %zu, "
                                 "\"script_max_bytes\": %zu, \"body_max_bytes\": %llu, \"result_max_bytes\": %zu, "
                                 "\"files_max_count\": %u, \"files_max_bytes\": %zu, \"max_batch\": %u, "
                                 "\"tmp_size_mb\": %lu}",
                           l->wall_time_s, l->cpu_time_s, l->memory_mb, l->max_processes, l->max_open_files,
                           l->stdout_max_bytes, l->script_max_bytes, (unsigned long long)st->runtime.body_max_bytes,
                           l->result_max_bytes, l->files_max_count, l->files_max_bytes, l->max_batch,
                           l->tmp_size_mb);
}

int stats_runtime(const struct pool_stats *st, struct sbuf *body)
{
        const char *inventory = st->runtime.inventory;
        int r = sbuf_puts(body, "{\"cgroups\": ");
        r = r ? r : jt_append_string(body, st->runtime.cgroups, strnlen(st->runtime.cgroups, sizeof(st->runtime.cgroups)));
        if (r == 0 && st->runtime.cgroups_problem[0]) {
                r = sbuf_puts(body, ", \"cgroups_problem\": ");
                r = r ? r : jt_append_string(body, st->runtime.cgroups_problem,
                                             strnlen(st->runtime.cgroups_problem, sizeof(st->runtime.cgroups_problem)));
        }
        r = r ? r : sbuf_printf(body, ", \"mode\": \"%s\", \"workers\": %u, ",
                                strcmp(st->runtime.mode, "cold") == 0 ? "cold" : "warm", st->runtime.workers);
        /* Without an inventory (the sandbox could not run it) the members are still there, so
         * that the answer has one shape; /health says what is wrong. */
        r = r ? r : sbuf_puts(body, inventory[0] ? inventory : "\"python\": null, \"packages\": {}");
        r = r ? r : sbuf_puts(body, ", \"limits\": ");
        r = r ? r : runtime_limits(st, body);
        r = r ? r : sbuf_printf(body, ", \"features\": %s}", runtime_features);
        return r;
}

/* "python": "3.11.2", "packages": {"numpy": "1.24.2", ...}: the members of sb_inventory()'s
 * object, checked and written anew (every string escaped by jt_append_string). */
static int inventory_members(struct json_object *root, struct sbuf *out, char *err, size_t errlen)
{
        struct json_object *python, *packages;
        if (!json_object_is_type(root, json_type_object) || json_object_object_length(root) != 2 ||
            !json_object_object_get_ex(root, "python", &python) || !json_object_is_type(python, json_type_string) ||
            !json_object_object_get_ex(root, "packages", &packages) ||
            !json_object_is_type(packages, json_type_object)) {
                snprintf(err, errlen, "the inventory is not {\"python\": string, \"packages\": object}");
                return -EINVAL;
        }
        int r = sbuf_puts(out, "\"python\": ");
        r = r ? r : jt_append_string(out, json_object_get_string(python), (size_t)json_object_get_string_len(python));
        r = r ? r : sbuf_puts(out, ", \"packages\": {");
        const char *sep = "";
        json_object_object_foreach(packages, name, version) {
                if (!json_object_is_type(version, json_type_string)) {
                        snprintf(err, errlen, "the inventory's version of %.100s is not a string", name);
                        return -EINVAL;
                }
                r = r ? r : sbuf_puts(out, sep);
                r = r ? r : jt_append_string(out, name, strlen(name));
                r = r ? r : sbuf_puts(out, ": ");
                r = r ? r : jt_append_string(out, json_object_get_string(version),
                                             (size_t)json_object_get_string_len(version));
                sep = ", ";
        }
        r = r ? r : sbuf_puts(out, "}");
        if (r < 0)
                snprintf(err, errlen, "out of memory");
        return r;
}

int stats_set_inventory(struct pool_stats *st, const char *json, size_t len, char *err, size_t errlen)
{
        if (len > INT_MAX) {
                snprintf(err, errlen, "the inventory is too large");
                return -E2BIG;
        }
        struct json_tokener *tok = json_tokener_new();
        if (!tok) {
                snprintf(err, errlen, "out of memory");
                return -ENOMEM;
        }
        struct json_object *root = json_tokener_parse_ex(tok, json, (int)len);
        bool parsed = json_tokener_get_error(tok) == json_tokener_success;
        json_tokener_free(tok);
        struct sbuf members = { 0 };
        int r = parsed ? inventory_members(root, &members, err, errlen) : -EINVAL;
        if (!parsed)
                snprintf(err, errlen, "the inventory is not JSON");
        json_object_put(root);
        if (r == 0 && members.len >= sizeof(st->runtime.inventory)) {
                snprintf(err, errlen, "the inventory takes %zu bytes, more than the %zu there is room for", members.len,
                         sizeof(st->runtime.inventory) - 1);
                r = -E2BIG;
        }
        if (r == 0)
                memcpy(st->runtime.inventory, members.data, members.len + 1);
        sbuf_free(&members);
        return r;
}

int stats_health(const struct pool_stats *st, bool healthz, bool detail, struct sbuf *body)
{
        unsigned idle, busy, starting;
        stats_workers(st, &idle, &busy, &starting);
        const char *problem = NULL;
        if (!__atomic_load_n(&st->sandbox_ok, __ATOMIC_RELAXED))
                problem = st->sandbox_problem;
        else if (idle + busy == 0)
                problem = starting ? "the workers are still starting" : "no worker is running";
        else if (__atomic_load_n(&st->draining, __ATOMIC_RELAXED))
                problem = "the pool is shutting down";
        (void)sbuf_puts(body, problem ? "{\"status\": \"unhealthy\", \"reason\": "
                                      : healthz ? "{\"status\": \"ok\"" : "{\"status\": \"healthy\"");
        if (problem)
                (void)jt_append_string(body, problem, strnlen(problem, sizeof(st->sandbox_problem)));
        /* Healthy or not, an open door is worth saying: the service runs anyone's code. */
        if (detail && __atomic_load_n(&st->keys.exposed, __ATOMIC_RELAXED) &&
            !__atomic_load_n(&st->keys.enabled, __ATOMIC_RELAXED))
                (void)sbuf_puts(body, ", \"warning\": \"" STATS_OPEN_WARNING "\"");
        (void)sbuf_puts(body, "}");
        return problem ? 503 : 200;
}

static uint64_t load(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }

/* pyexec_requests_total{key="...",outcome="..."}: the answers of requests made with a key
 * (those without one are the series without a key label, so that a sum over outcomes counts
 * each request once). Only outcomes that happened: 1024 keys by 30 outcomes would be a page of
 * zeros. Ids are safe in a label as they are (keys_id_valid). */
static int render_key_requests(const struct pool_stats *st, struct sbuf *out)
{
        int r = 0;
        for (int k = 0; k < STATS_KEYS_MAX && r == 0; k++) {
                const struct key_counters *c = &st->by_key[k];
                if (!__atomic_load_n(&c->ready, __ATOMIC_ACQUIRE))
                        break;
                for (size_t i = 0; i < NKINDS && r == 0; i++) {
                        uint64_t n = load(&c->requests[i]);
                        if (n)
                                r = sbuf_printf(out, "pyexec_requests_total{key=\"%s\",outcome=\"%s\"} %llu\n",
                                                c->id, kind_name(i), (unsigned long long)n);
                }
        }
        return r;
}

int stats_render(const struct pool_stats *st, struct sbuf *out)
{
        int r = sbuf_puts(out, "# HELP pyexec_requests_total Answers by outcome (error_kind, or ok).\n"
                               "# TYPE pyexec_requests_total counter\n");
        for (size_t i = 0; i < NKINDS && r == 0; i++)
                r = sbuf_printf(out, "pyexec_requests_total{outcome=\"%s\"} %llu\n", kind_name(i),
                                (unsigned long long)load(&st->requests[i]));
        r = r ? r : render_key_requests(st, out);
        if (r == 0)
                r = sbuf_puts(out, "# HELP pyexec_execute_seconds Time to answer POST /execute, in the worker.\n"
                                   "# TYPE pyexec_execute_seconds histogram\n");
        uint64_t cumulative = 0;
        for (int b = 0; b < STATS_LATENCY_BUCKETS && r == 0; b++) {
                cumulative += load(&st->latency[b]);
                if (b < STATS_LATENCY_BUCKETS - 1)
                        r = sbuf_printf(out, "pyexec_execute_seconds_bucket{le=\"%g\"} %llu\n", bucket_le[b],
                                        (unsigned long long)cumulative);
                else
                        r = sbuf_printf(out, "pyexec_execute_seconds_bucket{le=\"+Inf\"} %llu\n",
                                        (unsigned long long)cumulative);
        }
        if (r == 0)
                r = sbuf_printf(out, "pyexec_execute_seconds_sum %.3f\npyexec_execute_seconds_count %llu\n",
                                (double)load(&st->latency_sum_ms) / 1000.0, (unsigned long long)cumulative);
        unsigned idle, busy, starting;
        stats_workers(st, &idle, &busy, &starting);
        if (r == 0)
                r = sbuf_printf(out,
                                "# HELP pyexec_workers Workers of the pool by state.\n"
                                "# TYPE pyexec_workers gauge\n"
                                "pyexec_workers{state=\"idle\"} %u\npyexec_workers{state=\"busy\"} %u\n"
                                "pyexec_workers{state=\"starting\"} %u\n"
                                "# HELP pyexec_worker_respawns_total Workers replaced after dying.\n"
                                "# TYPE pyexec_worker_respawns_total counter\npyexec_worker_respawns_total %llu\n"
                                "# HELP pyexec_sandbox_failures_total Sandboxes that could not be set up (the script was not run).\n"
                                "# TYPE pyexec_sandbox_failures_total counter\npyexec_sandbox_failures_total %llu\n"
                                "# HELP pyexec_warm_fallbacks_total Scripts run cold because the warm interpreter failed.\n"
                                "# TYPE pyexec_warm_fallbacks_total counter\npyexec_warm_fallbacks_total %llu\n"
                                "# HELP pyexec_stream_aborts_total Streaming clients that went away before the end (the script was killed).\n"
                                "# TYPE pyexec_stream_aborts_total counter\npyexec_stream_aborts_total %llu\n"
                                "# HELP pyexec_sandbox_ok Whether sandboxes can be set up on this machine.\n"
                                "# TYPE pyexec_sandbox_ok gauge\npyexec_sandbox_ok %d\n",
                                idle, busy, starting, (unsigned long long)load(&st->respawns),
                                (unsigned long long)load(&st->sandbox_failures),
                                (unsigned long long)load(&st->warm_fallbacks),
                                (unsigned long long)load(&st->streams_aborted),
                                __atomic_load_n(&st->sandbox_ok, __ATOMIC_RELAXED) ? 1 : 0);
        if (r == 0)
                r = sbuf_puts(out, "# HELP pyexec_sandbox_phase_seconds_total Wall time the workers spent in each "
                                   "phase of their sandboxes' lives (all but run happen ahead of or after the "
                                   "request, while no client waits).\n"
                                   "# TYPE pyexec_sandbox_phase_seconds_total counter\n");
        for (int i = 0; i < SB_PHASE_COUNT && r == 0; i++)
                r = sbuf_printf(out, "pyexec_sandbox_phase_seconds_total{phase=\"%s\"} %.6f\n", sb_phase_names[i],
                                (double)load(&st->phase_us[i]) / 1e6);
        if (r == 0)
                r = sbuf_puts(out, "# HELP pyexec_worker_busy Per worker process: 1 while it runs a request.\n"
                                   "# TYPE pyexec_worker_busy gauge\n");
        for (int i = 0; i < POOL_MAX_SLOTS && r == 0; i++) {
                int pid = __atomic_load_n(&st->slots[i].pid, __ATOMIC_RELAXED);
                if (pid > 0)
                        r = sbuf_printf(out, "pyexec_worker_busy{pid=\"%d\"} %d\n", pid,
                                        __atomic_load_n(&st->slots[i].state, __ATOMIC_RELAXED) == SLOT_BUSY);
        }
        return r;
}
