/* provider.c — where sandboxes come from: the one place that chooses between warm and cold.
 *
 * Warm mode keeps one interpreter (pyexec-zygote) per tier — tier k has imported the first k
 * modules of warm_preload (imports.c) — and, with prefork, one sandbox prepared for each tier's
 * next script. A script goes to the smallest tier that has what it imports; its sandbox is the
 * tier's prepared one if that is still good, else a new one: warm while the tier's interpreter
 * runs (restarted when it died), cold when warm is off or fails. The sandbox of the last job is
 * torn down at the next refill, so that its owner can answer first. */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imports.h"
#include "internal.h"
#include "sandbox.h"
#include "zygote.h"

#define RETRY_INTERPRETER_MS 5000

struct tier {
        struct sb_zygote zygote;
        long long retry_at_ms; /* after a failed start: not before (its scripts run cold) */
        char preload[sizeof(((struct sb_supply *)0)->warm_preload)];
        struct sb_prepared ready; /* prefork: the next script's sandbox */
        struct sb_cgroup_slot slot; /* its sandboxes' cgroups, one sandbox at a time: ready's or used's */
};

struct sb_provider {
        struct sb_limits limits;
        struct sb_supply supply;
        struct sb_placement where;
        struct sb_provider_options options;
        char zygote_path[PATH_MAX];
        struct tier tiers[SB_MAX_TIERS];
        int ntiers;
        struct sb_prepared used; /* the last job's, until the next refill */
        struct sb_cgroup_slot cold_slot;
};

static void emit(struct sb_provider *p, enum sb_event ev, const char *detail)
{
        if (p->options.on_event)
                p->options.on_event(p->options.event_ctx, ev, detail);
}

/* With warm_tiers, one tier per prefix of warm_preload's groups ("", "numpy", "numpy pandas",
 * ...); without, only the full list (imports.h). */
static void setup_tiers(struct sb_provider *p)
{
        p->ntiers = sb_tier_count(&p->supply);
        if (p->ntiers == 0)
                p->ntiers = 1; /* cold: a tier that is never used */
        for (int t = 0; t < p->ntiers; t++) {
                p->tiers[t].zygote = (struct sb_zygote){ .pid = -1, .sock = -1 };
                sb_tier_preload(&p->supply, t, p->tiers[t].preload, sizeof(p->tiers[t].preload));
        }
}

int sb_provider_new(const struct sb_config *cfg, const struct sb_provider_options *o, struct sb_provider **out,
                    char *err, size_t errlen)
{
        struct sb_provider *p = calloc(1, sizeof(*p));
        if (!p) {
                snprintf(err, errlen, "out of memory");
                return -ENOMEM;
        }
        p->limits = cfg->limits;
        p->supply = cfg->supply;
        p->options = *o;
        p->where.id_slot = o->id_slot;
        sb_zygote_default_path(p->zygote_path, sizeof(p->zygote_path));
        if (o->private_network) {
                char why[256];
                if (sb_network_private(why, sizeof(why)) == 0)
                        p->where.share_caller_netns = true;
                else
                        emit(p, SB_EVENT_NETNS_PER_SANDBOX, why);
        }
        setup_tiers(p);
        *out = p;
        return 0;
}

static struct tier *tier_for(struct sb_provider *p, const struct sb_job *job)
{
        if (!p->supply.warm)
                return NULL;
        if (p->ntiers == 1)
                return &p->tiers[0];
        int need = sb_preload_needed(job->script, job->script_len, p->supply.warm_preload);
        return &p->tiers[need < p->ntiers ? need : p->ntiers - 1];
}

/* The tier's interpreter could not start (err): said once, and tried again later — not at
 * every request: one that cannot import would be started (and waited for, and logged) as often
 * as its scripts come. Meanwhile they run cold. */
static void interpreter_failed(struct sb_provider *p, struct tier *t, const char *err)
{
        t->retry_at_ms = monotonic_ms() + RETRY_INTERPRETER_MS;
        char detail[sizeof(t->preload) + 512 + 16];
        snprintf(detail, sizeof(detail), "preload \"%s\": %s", t->preload, err);
        emit(p, SB_EVENT_WARM_UNAVAILABLE, detail);
}

/* Starts the tier's interpreter unless it runs — connects to the pool's, when there is a
 * hub — and one that died is replaced. */
static void ensure_interpreter(struct sb_provider *p, struct tier *t)
{
        if (sb_zygote_alive(&t->zygote) || monotonic_ms() < t->retry_at_ms)
                return;
        sb_zygote_stop(&t->zygote);
        char err[512];
        int door = sb_hub_door(p->options.hub, (int)(t - p->tiers));
        int r = door >= 0 ? sb_zygote_connect(&t->zygote, door, err, sizeof(err))
                          : sb_zygote_start(&t->zygote, p->zygote_path, t->preload, err, sizeof(err));
        if (r < 0)
                interpreter_failed(p, t, err);
}

/* Whether the tier's interpreter is ready for a script, waiting up to wait_ms (-1: as long as
 * its start may take) for it. The pool's interpreters start together with the workers, the
 * largest tier's in seconds: a worker does not wait for one before it takes requests, only a
 * script of that tier does, and only for its own. */
static bool interpreter_ready(struct sb_provider *p, struct tier *t, int wait_ms)
{
        ensure_interpreter(p, t);
        if (t->zygote.sock < 0)
                return false;
        char err[512];
        int r = sb_zygote_ready(&t->zygote, wait_ms, err, sizeof(err));
        if (r < 0)
                interpreter_failed(p, t, err);
        return r > 0;
}

/* A sandbox for a script of tier t (NULL: cold): the one the tier keeps ready if it is still
 * good, else a new one — warm while the tier's interpreter runs, cold otherwise. */
static int take_sandbox(struct sb_provider *p, struct tier *t, struct sb_prepared *sb, char *err, size_t errlen)
{
        if (t && sb_prepared_usable(&t->ready)) {
                *sb = t->ready; /* ownership moves: the tier's slot is empty again */
                t->ready = (struct sb_prepared){ .active = false };
                return 0;
        }
        if (t) {
                sb_discard(&t->ready);
                if (interpreter_ready(p, t, -1)) {
                        if (sb_prepare(&p->limits, &p->where, &t->zygote, &t->slot, sb, err, errlen) == 0)
                                return 0;
                        emit(p, SB_EVENT_WARM_FAILED, err);
                        sb_zygote_stop(&t->zygote);
                }
        }
        return sb_prepare(&p->limits, &p->where, NULL, &p->cold_slot, sb, err, errlen);
}

int sb_provider_run(struct sb_provider *p, const struct sb_job *job, struct sb_outcome *out, char *err,
                    size_t errlen)
{
        sb_discard(&p->used);
        struct tier *t = tier_for(p, job);
        int r = take_sandbox(p, t, &p->used, err, errlen);
        if (r < 0)
                return r;
        r = sb_execute(&p->used, job, out, err, errlen);
        if (r == 0)
                snprintf(out->interpreter, sizeof(out->interpreter), "%s%s", p->used.warm ? "warm:" : "cold",
                         p->used.warm ? t->preload : "");
        return r;
}

void sb_provider_refill(struct sb_provider *p)
{
        sb_discard(&p->used);
        if (!p->supply.warm)
                return;
        for (int i = 0; i < p->ntiers; i++) {
                struct tier *t = &p->tiers[i];
                /* One still starting gets its sandbox at a later refill, or with its first script. */
                if (!interpreter_ready(p, t, 0) || !p->supply.prefork || t->ready.active)
                        continue;
                char err[512];
                struct sb_prepared sb;
                if (take_sandbox(p, t, &sb, err, sizeof(err)) < 0) {
                        emit(p, SB_EVENT_PREPARE_FAILED, err);
                        continue;
                }
                t->ready = sb;
        }
}

bool sb_provider_starting(const struct sb_provider *p)
{
        for (int i = 0; i < p->ntiers; i++)
                if (p->tiers[i].zygote.hello_due_ms)
                        return true;
        return false;
}

void sb_provider_free(struct sb_provider *p)
{
        if (!p)
                return;
        /* Every init killed first, then each waited for: a dying init waits for its PID
         * namespace's last process to be reaped, which is not always prompt (after the pool's
         * master was killed, the scripts' processes are orphans of whatever reaps for PID 1:
         * 1-2 s each here), so the waits overlap instead of adding up. */
        sb_prepared_kill(&p->used);
        for (int i = 0; i < p->ntiers; i++)
                sb_prepared_kill(&p->tiers[i].ready);
        sb_discard(&p->used);
        for (int i = 0; i < p->ntiers; i++) {
                sb_discard(&p->tiers[i].ready);
                sb_zygote_stop(&p->tiers[i].zygote); /* its forker leaves the tier's slot */
                sb_cgroup_slot_free(&p->tiers[i].slot);
        }
        sb_cgroup_slot_free(&p->cold_slot);
        free(p);
}

int sb_run_cold_once(const struct sb_config *cfg, const struct sb_job *job, struct sb_outcome *out, char *err,
                     size_t errlen)
{
        struct sb_config cold = *cfg;
        cold.supply.warm = 0;
        struct sb_provider_options o = { .id_slot = SB_ID_SLOT_PROBE };
        struct sb_provider *p;
        int r = sb_provider_new(&cold, &o, &p, err, errlen);
        if (r == 0) {
                r = sb_provider_run(p, job, out, err, errlen);
                sb_provider_free(p);
        }
        /* The run started an init factory for this process; one that then only waits for its
         * children (the pool's master) must not hold it. */
        sb_initd_stop();
        return r;
}

int sb_probe(const struct sb_config *cfg, char *problem, size_t len)
{
        static const char probe[] = "def main():\n    return 'ok'\n";
        struct sb_outcome out;
        struct sb_job job = { .script = probe, .script_len = sizeof(probe) - 1 };
        int r = sb_run_cold_once(cfg, &job, &out, problem, len);
        if (r < 0)
                return r;
        if (out.status != SB_OK || out.result.len != 4 || memcmp(out.result.data, "\"ok\"", 4) != 0) {
                snprintf(problem, len, "the probe script did not run correctly: %s %.200s", sb_status_kind(out.status),
                         out.stderr_buf.data ? out.stderr_buf.data : "");
                r = -EIO;
        }
        sb_outcome_free(&out);
        return r;
}
