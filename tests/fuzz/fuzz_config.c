/* fuzz_config.c — sb_config_load() on any file: the input is written to a memfd and loaded
 * through /proc/self/fd, so the parser reads it exactly as it reads config/pyexec.conf.
 *
 * Oracles: a file that loads leaves every value in its documented range; one that does not
 * says why in a NUL-terminated message; and the same file with every line commented out
 * changes nothing at all (a setting must never take effect from inside a comment). */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "sandbox.h"
#include "util.h"
#include "fuzz_text.h"

static bool in_range(const struct sb_config *c)
{
        const struct sb_limits *l = &c->limits;
        const struct sb_supply *s = &c->supply;
        return l->wall_time_s >= 1 && l->wall_time_s <= 3600 && l->cpu_time_s >= 1 && l->cpu_time_s <= 3600 &&
               l->memory_mb >= 64 && l->memory_mb <= (1 << 20) && l->max_processes >= 2 &&
               l->script_max_bytes >= 1 && c->service.body_max_bytes >= 16 && l->result_max_bytes >= 16 &&
               s->warm <= 1 && s->prefork <= 1 && s->warm_tiers <= 1 && s->warm_rotate_s <= 31u * 86400 &&
               c->service.workers >= 1 &&
               c->service.workers <= 256 && memchr(s->warm_preload, '\0', sizeof(s->warm_preload)) != NULL &&
               memchr(c->service.api_keys_file, '\0', sizeof(c->service.api_keys_file)) != NULL &&
               c->service.key_rps <= 100000 && c->service.key_concurrency <= 10000;
}

/* Field by field: the structs' padding is not part of their value. */
static bool same(const struct sb_config *x, const struct sb_config *y)
{
        const struct sb_limits *a = &x->limits, *b = &y->limits;
        const struct sb_supply *p = &x->supply, *q = &y->supply;
        const struct sb_service *s = &x->service, *t = &y->service;
        return a->wall_time_s == b->wall_time_s && a->cpu_time_s == b->cpu_time_s && a->memory_mb == b->memory_mb &&
               a->max_processes == b->max_processes && a->max_open_files == b->max_open_files &&
               a->tmp_size_mb == b->tmp_size_mb && a->tmp_inodes == b->tmp_inodes &&
               a->script_max_bytes == b->script_max_bytes && a->stdout_max_bytes == b->stdout_max_bytes &&
               a->result_max_bytes == b->result_max_bytes && a->require_cgroups == b->require_cgroups &&
               a->files_max_count == b->files_max_count && a->files_max_bytes == b->files_max_bytes &&
               a->max_batch == b->max_batch &&
               a->uid_base == b->uid_base && p->warm == q->warm && p->prefork == q->prefork &&
               strcmp(p->warm_preload, q->warm_preload) == 0 && p->warm_tiers == q->warm_tiers &&
               p->warm_rotate_s == q->warm_rotate_s &&
               s->workers == t->workers && s->queue_slots == t->queue_slots &&
               s->queue_timeout_ms == t->queue_timeout_ms && s->body_max_bytes == t->body_max_bytes &&
               strcmp(s->api_keys_file, t->api_keys_file) == 0 && s->key_rps == t->key_rps &&
               s->key_burst == t->key_burst && s->key_concurrency == t->key_concurrency;
}

/* Loads text[0..size) as a config file over the defaults. */
static int load(const void *text, size_t size, struct sb_config *l, char *err, size_t errlen)
{
        static int fd = -1;
        static char path[64];
        if (fd < 0) {
                fd = memfd_create("pyexec-fuzz.conf", MFD_CLOEXEC);
                if (fd < 0)
                        abort();
                snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
        }
        if (ftruncate(fd, 0) < 0 || pwrite(fd, text, size, 0) != (ssize_t)size)
                abort();
        sb_config_default(l);
        memset(err, 'x', errlen);
        return sb_config_load(l, path, err, errlen);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct sb_config l, def;
        char err[256];
        int r = load(data, size, &l, err, sizeof(err));
        if (r == 0 && !in_range(&l))
                abort();
        if (r < 0 && !memchr(err, '\0', sizeof(err)))
                abort();

        size_t clen;
        char *c = commented(data, size, &clen);
        r = load(c, clen, &l, err, sizeof(err));
        sb_config_default(&def);
        /* A NUL byte may be refused; anything else commented out must load as the defaults. */
        if (r == 0 ? !same(&l, &def) : !memchr(data, '\0', size))
                abort();
        free(c);
        return 0;
}
