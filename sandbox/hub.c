/* hub.c — the pool's warm interpreters: one per tier, shared by every worker.
 *
 * The pool's master starts one pyexec-zygote per tier in hub mode and holds a door to each: a
 * SOCK_SEQPACKET socket pair whose one end the interpreter reads and whose other end every
 * worker inherits. A worker connects by sending one end of a new socket pair through the door
 * (sb_zygote_connect); the interpreter forks a copy of itself that serves that worker alone.
 * The copies share every page of the interpreter, so its memory is paid once per tier, not
 * once per worker, and each worker still forks its scripts from a process of its own (in
 * parallel with the others, as before).
 *
 * The master keeps its own copy of both ends. An interpreter that dies is started again on the
 * same door (after a growing back-off when it keeps dying), and the connections that wait in
 * the door meanwhile are served by the new one. A reload that changes what is preloaded
 * retires the hub: the master lets go of the door, and each interpreter leaves once the last
 * worker holding it has (its door reads end-of-file) — so no running script loses its
 * interpreter. What the interpreters hold is only what they imported: scripts reach their
 * sandboxes from the workers, never through here. */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "imports.h"
#include "internal.h"
#include "sandbox.h"
#include "util.h"
#include "zygote.h"

#define MAX_BACKOFF_MS 5000

struct hub_tier {
        char preload[sizeof(((struct sb_supply *)0)->warm_preload)];
        int door[2]; /* [0]: the workers' end, [1]: the interpreter's; -1 once let go */
        pid_t pid;   /* the interpreter, 0 while none runs */
        long long started_ms, restart_at_ms;
        unsigned quick_deaths;
};

struct sb_hub {
        struct sb_supply supply;
        int ntiers;
        bool retired;
        char path[PATH_MAX];
        struct hub_tier tiers[SB_MAX_TIERS];
};

static void start_tier(struct sb_hub *h, struct hub_tier *t)
{
        char err[256];
        t->restart_at_ms = 0;
        t->started_ms = monotonic_ms();
        pid_t pid = sb_zygote_start_hub(h->path, t->preload, t->door[1], err, sizeof(err));
        t->pid = pid > 0 ? pid : 0;
        if (pid < 0) /* try again later; meanwhile the workers' connections wait in the door */
                t->restart_at_ms = monotonic_ms() + MAX_BACKOFF_MS;
}

int sb_hub_new(const struct sb_supply *s, struct sb_hub **out, char *err, size_t errlen)
{
        struct sb_hub *h = calloc(1, sizeof(*h));
        if (!h) {
                snprintf(err, errlen, "out of memory");
                return -ENOMEM;
        }
        h->supply = *s;
        h->ntiers = sb_tier_count(s);
        sb_zygote_default_path(h->path, sizeof(h->path));
        for (int i = 0; i < h->ntiers; i++) {
                struct hub_tier *t = &h->tiers[i];
                sb_tier_preload(s, i, t->preload, sizeof(t->preload));
                if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, t->door) < 0) {
                        int e = errno;
                        snprintf(err, errlen, "socketpair: %s", strerror(e));
                        h->ntiers = i;
                        sb_hub_free(h);
                        return -e;
                }
        }
        for (int i = 0; i < h->ntiers; i++)
                start_tier(h, &h->tiers[i]);
        *out = h;
        return 0;
}

bool sb_hub_serves(const struct sb_hub *h, const struct sb_supply *s)
{
        return h && !h->retired && h->supply.warm == s->warm && h->supply.warm_tiers == s->warm_tiers &&
               strcmp(h->supply.warm_preload, s->warm_preload) == 0;
}

int sb_hub_door(const struct sb_hub *h, int tier)
{
        return h && !h->retired && tier >= 0 && tier < h->ntiers ? h->tiers[tier].door[0] : -1;
}

const char *sb_hub_reaped(struct sb_hub *h, pid_t pid)
{
        for (int i = 0; h && i < h->ntiers; i++) {
                struct hub_tier *t = &h->tiers[i];
                if (t->pid != pid || pid <= 0)
                        continue;
                t->pid = 0;
                if (h->retired)
                        return t->preload;
                /* Again at once if it had lived a while, else after a growing back-off. */
                long long now = monotonic_ms();
                t->quick_deaths = now - t->started_ms < 10000 ? t->quick_deaths + 1 : 0;
                long long delay = t->quick_deaths > 1 ? 100LL << (t->quick_deaths < 6 ? t->quick_deaths : 6) : 0;
                t->restart_at_ms = now + (delay > MAX_BACKOFF_MS ? MAX_BACKOFF_MS : delay);
                return t->preload;
        }
        return NULL;
}

void sb_hub_tick(struct sb_hub *h)
{
        long long now = monotonic_ms();
        for (int i = 0; h && !h->retired && i < h->ntiers; i++) {
                struct hub_tier *t = &h->tiers[i];
                if (t->pid == 0 && t->restart_at_ms && now >= t->restart_at_ms)
                        start_tier(h, t);
        }
}

static void close_end(int *fd)
{
        if (*fd >= 0)
                (void)close(*fd);
        *fd = -1;
}

void sb_hub_retire(struct sb_hub *h)
{
        if (!h)
                return;
        h->retired = true;
        for (int i = 0; i < h->ntiers; i++) {
                close_end(&h->tiers[i].door[0]);
                close_end(&h->tiers[i].door[1]);
        }
}

bool sb_hub_finished(const struct sb_hub *h)
{
        for (int i = 0; h && i < h->ntiers; i++)
                if (h->tiers[i].pid > 0)
                        return false;
        return true;
}

void sb_hub_in_child(const struct sb_hub *h, bool keep_doors)
{
        for (int i = 0; h && i < h->ntiers; i++) {
                if (h->tiers[i].door[1] >= 0)
                        (void)close(h->tiers[i].door[1]);
                if (!keep_doors && h->tiers[i].door[0] >= 0)
                        (void)close(h->tiers[i].door[0]);
        }
}

void sb_hub_free(struct sb_hub *h)
{
        if (!h)
                return;
        sb_hub_retire(h);
        for (int i = 0; i < h->ntiers; i++) {
                if (h->tiers[i].pid <= 0)
                        continue;
                (void)kill(h->tiers[i].pid, SIGKILL);
                while (waitpid(h->tiers[i].pid, NULL, 0) < 0 && errno == EINTR)
                        ;
        }
        free(h);
}
