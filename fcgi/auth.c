/* auth.c — the authenticator in the monitor, and the key set it reads (auth.h).
 *
 * The master is the only writer of the key table and the monitor its only reader, so a
 * seqlock does: the master makes seq odd, rewrites, makes it even again; the monitor retries a
 * lookup that saw an odd seq or a different one at its end. A reload thus swaps the keys
 * between two requests of the monitor, never under one, and no request is refused for it. */
#define _GNU_SOURCE
#include "auth.h"

#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "http.h"
#include "log.h"
#include "reply.h"

int auth_load(const struct sb_config *c, struct key_set **out, char *err, size_t errlen)
{
        *out = NULL;
        if (!c->service.api_keys_file[0])
                return 0;
        struct key_set *set = malloc(sizeof(*set));
        if (!set) {
                snprintf(err, errlen, "out of memory");
                return -ENOMEM;
        }
        const struct key_limits defaults = { .rps = c->service.key_rps, .burst = c->service.key_burst,
                                             .concurrency = c->service.key_concurrency };
        int r = keys_load(c->service.api_keys_file, &defaults, set, err, errlen);
        if (r < 0) {
                free(set);
                return r;
        }
        *out = set;
        return 0;
}

void auth_publish(struct pool_stats *st, const struct key_set *set, bool exposed)
{
        struct key_table *t = &st->keys;
        uint32_t seq = __atomic_load_n(&t->seq, __ATOMIC_RELAXED);
        __atomic_store_n(&t->seq, seq + 1, __ATOMIC_RELAXED);
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        if (set) {
                t->set.count = set->count;
                memcpy(t->set.keys, set->keys, set->count * sizeof(set->keys[0]));
        } else {
                t->set.count = 0;
        }
        __atomic_store_n(&t->enabled, set != NULL, __ATOMIC_RELAXED);
        __atomic_store_n(&t->exposed, exposed, __ATOMIC_RELAXED);
        __atomic_store_n(&t->seq, seq + 2, __ATOMIC_RELEASE);
        if (set)
                stats_register_keys(st, set);
}

/* Runs find(t, ctx) until it ran on a table no writer touched meanwhile. */
static int consistent(const struct key_table *t, int (*find)(const struct key_table *, void *), void *ctx)
{
        for (;;) {
                uint32_t before = __atomic_load_n(&t->seq, __ATOMIC_ACQUIRE);
                if (before & 1) {
                        (void)sched_yield();
                        continue;
                }
                int r = find(t, ctx);
                __atomic_thread_fence(__ATOMIC_ACQUIRE);
                if (__atomic_load_n(&t->seq, __ATOMIC_RELAXED) == before)
                        return r;
        }
}

struct lookup {
        const char *secret, *id_in; /* by secret, or by id */
        size_t len;
        char id[KEY_ID_MAX + 1];
        struct key_limits limits;
};

static int find_key(const struct key_table *t, void *ctx)
{
        struct lookup *l = ctx;
        int i = -1;
        if (l->secret) {
                i = keys_match(&t->set, l->secret, l->len);
        } else {
                unsigned n = t->set.count < KEYS_MAX ? t->set.count : KEYS_MAX;
                for (unsigned k = 0; k < n && i < 0; k++)
                        if (strncmp(t->set.keys[k].id, l->id_in, sizeof(l->id)) == 0)
                                i = (int)k;
        }
        if (i >= 0) {
                memcpy(l->id, t->set.keys[i].id, sizeof(l->id));
                l->id[KEY_ID_MAX] = '\0';
                l->limits = t->set.keys[i].limits;
        }
        return i;
}

int auth_lookup(const struct key_table *t, const char *authorization, char id[KEY_ID_MAX + 1],
                struct key_limits *limits)
{
        struct lookup l = { 0 };
        if (keys_bearer(authorization, &l.secret, &l.len) < 0)
                return -1;
        if (consistent(t, find_key, &l) < 0)
                return -1;
        memcpy(id, l.id, sizeof(l.id));
        if (limits)
                *limits = l.limits;
        return 0;
}

void auth_handle(FCGX_Request *req, struct pool_stats *st)
{
        char id[KEY_ID_MAX + 1];
        if (!__atomic_load_n(&st->keys.enabled, __ATOMIC_ACQUIRE)) {
                FCGX_PutS("Status: 204 No Content\r\n\r\n", req->out);
                return;
        }
        if (auth_lookup(&st->keys, FCGX_GetParam("HTTP_AUTHORIZATION", req->envp), id, NULL) < 0) {
                stats_count(st, "unauthorized", -1);
                /* nginx answers the JSON page, with WWW-Authenticate (nginx/json_errors.conf.in). */
                FCGX_PutS("Status: 401 Unauthorized\r\n\r\n", req->out);
                return;
        }
        char head[128 + KEY_ID_MAX];
        int n = snprintf(head, sizeof(head), "Status: 204 No Content\r\nX-Pyexec-Key: %s\r\n\r\n", id);
        FCGX_PutStr(head, n, req->out);
}

void auth_limited(FCGX_Request *req, struct pool_stats *st)
{
        const char *key = FCGX_GetParam("PYEXEC_KEY", req->envp);
        const char *which = FCGX_GetParam("PYEXEC_LIMIT", req->envp);
        struct lookup l = { .id_in = key && keys_id_valid(key, strlen(key)) ? key : NULL };
        bool known = l.id_in && consistent(&st->keys, find_key, &l) >= 0;
        bool rate = which && strcmp(which, "REJECTED") == 0; /* else limit_conn refused it */
        struct api_error e;
        if (!known)
                api_error_set(&e, 429, "rate_limited", "Too many requests with this key; retry later");
        else if (rate)
                api_error_set(&e, 429, "rate_limited",
                              "Key '%s' is over its rate (%u requests/s, bursts of %u more); retry after 1 s", l.id,
                              l.limits.rps, l.limits.burst);
        else
                api_error_set(&e, 429, "rate_limited",
                              "Key '%s' already has %u scripts in flight, its limit; retry when one has finished",
                              l.id, l.limits.concurrency);
        stats_count_key(st, known ? l.id : NULL, "rate_limited", -1);
        struct reply r = { 0 };
        reply_error(&r, &e);
        /* Whole seconds: limit_req refuses only while the key's bucket is full, and at rps >= 1
         * a request's worth drains from it within a second. */
        char head[256];
        int n = snprintf(head, sizeof(head), "Status: 429 Too Many Requests\r\nRetry-After: 1\r\n"
                                             "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                         r.body.len);
        FCGX_PutStr(head, n, req->out);
        FCGX_PutStr(r.body.data, (int)r.body.len, req->out);
        reply_free(&r);
}
