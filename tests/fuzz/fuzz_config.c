/* fuzz_config.c — sb_limits_load() on any file: the input is written to a memfd and loaded
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

#include "config.h"
#include "util.h"

static bool in_range(const struct sb_limits *l)
{
        return l->wall_time_s >= 1 && l->wall_time_s <= 3600 && l->cpu_time_s >= 1 && l->cpu_time_s <= 3600 &&
               l->memory_mb >= 64 && l->memory_mb <= (1 << 20) && l->max_processes >= 2 &&
               l->script_max_bytes >= 1 && l->body_max_bytes >= 16 && l->result_max_bytes >= 16 &&
               l->warm <= 1 && l->prefork <= 1 && l->warm_tiers <= 1 && l->workers >= 1 && l->workers <= 256 &&
               memchr(l->warm_preload, '\0', sizeof(l->warm_preload)) != NULL;
}

/* Field by field: the struct's padding is not part of its value. */
static bool same(const struct sb_limits *a, const struct sb_limits *b)
{
        return a->wall_time_s == b->wall_time_s && a->cpu_time_s == b->cpu_time_s && a->memory_mb == b->memory_mb &&
               a->max_processes == b->max_processes && a->max_open_files == b->max_open_files &&
               a->tmp_size_mb == b->tmp_size_mb && a->tmp_inodes == b->tmp_inodes &&
               a->script_max_bytes == b->script_max_bytes && a->body_max_bytes == b->body_max_bytes &&
               a->stdout_max_bytes == b->stdout_max_bytes && a->result_max_bytes == b->result_max_bytes &&
               a->uid_base == b->uid_base && a->warm == b->warm && a->prefork == b->prefork &&
               strcmp(a->warm_preload, b->warm_preload) == 0 && a->warm_tiers == b->warm_tiers &&
               a->workers == b->workers && a->queue_slots == b->queue_slots &&
               a->queue_timeout_ms == b->queue_timeout_ms && a->share_caller_netns == b->share_caller_netns;
}

/* Loads text[0..size) as a config file over the defaults. */
static int load(const void *text, size_t size, struct sb_limits *l, char *err, size_t errlen)
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
        sb_limits_default(l);
        memset(err, 'x', errlen);
        return sb_limits_load(l, path, err, errlen);
}

/* The text with '#' put in front of every line. The caller frees it. */
static char *commented(const uint8_t *data, size_t size, size_t *len)
{
        char *out = malloc(2 * size + 1);
        if (!out)
                abort();
        size_t n = 0;
        out[n++] = '#';
        for (size_t i = 0; i < size; i++) {
                out[n++] = (char)data[i];
                if (data[i] == '\n' && i + 1 < size)
                        out[n++] = '#';
        }
        *len = n;
        return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct sb_limits l, def;
        char err[256];
        int r = load(data, size, &l, err, sizeof(err));
        if (r == 0 && !in_range(&l))
                abort();
        if (r < 0 && !memchr(err, '\0', sizeof(err)))
                abort();

        size_t clen;
        char *c = commented(data, size, &clen);
        r = load(c, clen, &l, err, sizeof(err));
        sb_limits_default(&def);
        /* A NUL byte may be refused; anything else commented out must load as the defaults. */
        if (r == 0 ? !same(&l, &def) : !memchr(data, '\0', size))
                abort();
        free(c);
        return 0;
}
