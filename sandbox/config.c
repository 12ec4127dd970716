/* config.c — parse config/pyexec.conf into struct sb_config (sandbox.h). */
#include "sandbox.h"

#include <ctype.h>
#include <stdbool.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Static, so its padding is zero too: two configs with the same settings compare equal with
 * memcmp() (the tests do, and a reload may). */
static const struct sb_config defaults = {
        .limits = {
                .wall_time_s = 10,
                .cpu_time_s = 10,
                .memory_mb = 512,
                .max_processes = 64,
                .max_open_files = 256,
                .tmp_size_mb = 64,
                .tmp_inodes = 4096,
                .script_max_bytes = 1u << 20,
                .stdout_max_bytes = 1u << 20,
                .result_max_bytes = 8u << 20,
                .files_max_count = 100,
                .max_batch = 100,
                .files_max_bytes = 8u << 20,
                .require_cgroups = 1,
                .uid_base = 1879048192,
        },
        .supply = {
                .warm = 1,
                .prefork = 1,
                .warm_preload = "numpy | pandas | scipy sklearn matplotlib seaborn requests",
                .warm_tiers = 1,
                .warm_rotate_s = 3600,
        },
        .service = {
                .workers = 4,
                .queue_slots = 16,
                .queue_timeout_ms = 5000,
                .body_max_bytes = 8u << 20,
                .key_rps = 5,
                .key_burst = 10,
                .key_concurrency = 2,
        },
};

void sb_config_default(struct sb_config *c)
{
        memcpy(c, &defaults, sizeof(*c));
}

enum kind { K_UINT, K_ULONG, K_SIZE, K_WORDS, K_PATH };
struct key {
        const char *name;
        enum kind kind;
        size_t offset;
        unsigned long long min, max;
};

/* Every key is a member of one of struct sb_config's parts; the file's order is this one. */
#define KEY(part, n, k, lo, hi) { #n, k, offsetof(struct sb_config, part.n), lo, hi }
static const struct key keys[] = {
        KEY(limits, wall_time_s, K_UINT, 1, 3600),
        KEY(limits, cpu_time_s, K_UINT, 1, 3600),
        KEY(limits, memory_mb, K_ULONG, 64, 1 << 20),
        KEY(limits, max_processes, K_UINT, 2, 1 << 16),
        KEY(limits, max_open_files, K_UINT, 16, 1 << 20),
        KEY(limits, tmp_size_mb, K_ULONG, 1, 1 << 20),
        KEY(limits, tmp_inodes, K_UINT, 16, 1 << 24),
        KEY(limits, script_max_bytes, K_SIZE, 1, 1ull << 30),
        KEY(service, body_max_bytes, K_SIZE, 16, 1ull << 30),
        KEY(limits, stdout_max_bytes, K_SIZE, 0, 1ull << 30),
        KEY(limits, result_max_bytes, K_SIZE, 16, 1ull << 30),
        KEY(limits, files_max_count, K_UINT, 0, 4096),
        KEY(limits, max_batch, K_UINT, 1, 10000),
        KEY(limits, files_max_bytes, K_SIZE, 0, 1ull << 30),
        KEY(limits, require_cgroups, K_UINT, 0, 1),
        KEY(limits, uid_base, K_UINT, 1, 4294967294u - SB_ID_COUNT),
        KEY(supply, warm, K_UINT, 0, 1),
        KEY(supply, prefork, K_UINT, 0, 1),
        KEY(supply, warm_preload, K_WORDS, 0, 0),
        KEY(supply, warm_tiers, K_UINT, 0, 1),
        KEY(supply, warm_rotate_s, K_UINT, 0, 31u * 86400),
        KEY(service, workers, K_UINT, 1, 256),
        KEY(service, queue_slots, K_UINT, 0, 100000),
        KEY(service, queue_timeout_ms, K_UINT, 0, 3600000),
        KEY(service, api_keys_file, K_PATH, 0, 0),
        KEY(service, key_rps, K_UINT, 0, 100000),
        KEY(service, key_burst, K_UINT, 0, 100000),
        KEY(service, key_concurrency, K_UINT, 0, 10000),
};

static char *trim(char *s)
{
        while (isspace((unsigned char)*s))
                s++;
        char *e = s + strlen(s);
        while (e > s && isspace((unsigned char)e[-1]))
                *--e = '\0';
        return s;
}

/* A file name: printable, no spaces (serve.sh and nginx's config quote nothing). Relative ones
 * are made absolute by sb_config_load(), against the config file's directory. */
static int set_path(char *field, size_t size, const char *name, const char *value, char *err, size_t errlen)
{
        size_t n = strlen(value);
        bool printable = true;
        for (size_t i = 0; i < n; i++)
                printable &= value[i] > ' ' && value[i] < 0x7f && value[i] != '"' && value[i] != '\\';
        if (n >= size || !printable) {
                snprintf(err, errlen, "%s: '%.100s' is not a file name of printable characters without spaces",
                         name, value);
                return -EINVAL;
        }
        memcpy(field, value, n + 1);
        return 0;
}

static int set_key(struct sb_config *c, const char *name, const char *value, char *err, size_t errlen)
{
        for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
                const struct key *k = &keys[i];
                if (strcmp(k->name, name) != 0)
                        continue;
                char *field = (char *)c + k->offset;
                if (k->kind == K_PATH)
                        return set_path(field, sizeof(c->service.api_keys_file), name, value, err, errlen);
                if (k->kind == K_WORDS) {
                        /* Module names: letters, digits, '_', '.', separated by spaces, in
                         * groups separated by '|' (imports.h). */
                        size_t n = strlen(value);
                        if (n >= sizeof(c->supply.warm_preload) || strspn(value, "abcdefghijklmnopqrstuvwxyz"
                                                                          "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.| ") != n) {
                                snprintf(err, errlen, "%s: '%s' is not a list of module names", name, value);
                                return -EINVAL;
                        }
                        memcpy(field, value, n + 1);
                        return 0;
                }
                char *end;
                errno = 0;
                unsigned long long v = strtoull(value, &end, 10);
                if (errno || end == value || *end || value[0] == '-' || v < k->min || v > k->max) {
                        snprintf(err, errlen, "%s: '%s' is not a whole number from %llu to %llu",
                                 name, value, k->min, k->max);
                        return -EINVAL;
                }
                switch (k->kind) {
                case K_UINT: *(unsigned *)field = (unsigned)v; break;
                case K_ULONG: *(unsigned long *)field = (unsigned long)v; break;
                case K_SIZE: *(size_t *)field = (size_t)v; break;
                case K_WORDS: case K_PATH: break;
                }
                return 0;
        }
        snprintf(err, errlen, "unknown setting '%s'", name);
        return -EINVAL;
}

/* One line (NUL-terminated by getline), comment and all, applied to *l. */
static int load_line(struct sb_config *c, char *line, size_t len, const char *where, char *err, size_t errlen)
{
        if (memchr(line, '\0', len)) {
                snprintf(err, errlen, "%s: a NUL byte", where);
                return -EINVAL;
        }
        char *hash = strchr(line, '#');
        if (hash)
                *hash = '\0';
        char *s = trim(line);
        if (!*s)
                return 0;
        char *eq = strchr(s, '=');
        if (!eq) {
                snprintf(err, errlen, "%s: expected 'key = value'", where);
                return -EINVAL;
        }
        *eq = '\0';
        char msg[200];
        int r = set_key(c, trim(s), trim(eq + 1), msg, sizeof(msg));
        if (r < 0)
                snprintf(err, errlen, "%s: %s", where, msg);
        return r;
}

/* api_keys_file relative to the config file's directory: where the two are kept together. */
static int absolute_keys_file(struct sb_config *c, const char *config_path, char *err, size_t errlen)
{
        char *file = c->service.api_keys_file;
        if (!file[0] || file[0] == '/')
                return 0;
        const char *slash = strrchr(config_path, '/');
        int dir = slash ? (int)(slash - config_path) : 1;
        char full[sizeof(c->service.api_keys_file)];
        int n = snprintf(full, sizeof(full), "%.*s/%s", dir, slash ? config_path : ".", file);
        if (n < 0 || (size_t)n >= sizeof(full)) {
                snprintf(err, errlen, "api_keys_file: the path is too long");
                return -ENAMETOOLONG;
        }
        memcpy(file, full, (size_t)n + 1);
        return 0;
}

int sb_config_load(struct sb_config *c, const char *path, char *err, size_t errlen)
{
        FILE *f = fopen(path, "re");
        if (!f) {
                int e = errno;
                snprintf(err, errlen, "%s: %s", path, strerror(e));
                return -e;
        }
        /* getline(), not a fixed buffer: a long line read in pieces made its tail a line of its
         * own, so a setting inside a long comment took effect (found by fuzz_config.c). */
        char *line = NULL;
        size_t cap = 0;
        ssize_t n;
        int lineno = 0, r = 0;
        while (r == 0 && (n = getline(&line, &cap, f)) >= 0) {
                char where[300];
                snprintf(where, sizeof(where), "%s:%d", path, ++lineno);
                r = load_line(c, line, (size_t)n, where, err, errlen);
        }
        if (r == 0 && ferror(f)) {
                snprintf(err, errlen, "%s: read error", path);
                r = -EIO;
        }
        free(line);
        fclose(f);
        return r ? r : absolute_keys_file(c, path, err, errlen);
}

int sb_config_print(const struct sb_config *c, FILE *out)
{
        for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
                const struct key *k = &keys[i];
                const char *field = (const char *)c + k->offset;
                switch (k->kind) {
                case K_UINT: fprintf(out, "%s=%u\n", k->name, *(const unsigned *)field); break;
                case K_ULONG: fprintf(out, "%s=%lu\n", k->name, *(const unsigned long *)field); break;
                case K_SIZE: fprintf(out, "%s=%zu\n", k->name, *(const size_t *)field); break;
                case K_WORDS: case K_PATH: fprintf(out, "%s=%s\n", k->name, field); break;
                }
        }
        return fflush(out) == 0 && !ferror(out) ? 0 : -EIO;
}

/* ---- host identities --------------------------------------------------------------- */

/* Whether [lo, hi] meets the block of ids the sandboxes use. */
static bool meets_block(const struct sb_limits *l, unsigned long long lo, unsigned long long hi)
{
        unsigned long long first = l->uid_base, last = (unsigned long long)l->uid_base + SB_ID_COUNT - 1;
        return lo <= last && hi >= first;
}

/* Scans one colon-separated file: subordinate ranges ("name:start:count") when ranges, else
 * the id in field 3 (passwd, group). 0, or -EEXIST with the first clash described. */
static int scan_ids(const struct sb_limits *l, const char *etc_dir, const char *file, bool ranges, char *err,
                    size_t errlen)
{
        char path[512];
        snprintf(path, sizeof(path), "%s/%s", etc_dir, file);
        FILE *f = fopen(path, "re");
        if (!f)
                return 0; /* no such file: nothing to clash with */
        char line[1024];
        int r = 0;
        while (r == 0 && fgets(line, sizeof(line), f)) {
                char *name = line, *colon = strchr(line, ':');
                if (!colon)
                        continue;
                *colon = '\0';
                char *field = colon + 1;
                if (!ranges && !(field = strchr(field, ':')))
                        continue; /* passwd/group: skip the password field */
                if (!ranges)
                        field++;
                char *end;
                unsigned long long lo = strtoull(field, &end, 10), count = 1;
                if (end == field || (*end != ':' && *end != '\n' && *end != '\0'))
                        continue;
                if (ranges)
                        count = strtoull(end + 1, NULL, 10);
                if (count && meets_block(l, lo, lo + count - 1)) {
                        snprintf(err, errlen, "uid_base: host ids %u-%llu meet %s of '%s' (%llu-%llu) in %s; choose another uid_base",
                                 l->uid_base, (unsigned long long)l->uid_base + SB_ID_COUNT - 1,
                                 ranges ? "the subordinate range" : "the id", name, lo, lo + count - 1, path);
                        r = -EEXIST;
                }
        }
        fclose(f);
        return r;
}

int sb_limits_check_ids(const struct sb_limits *l, const char *etc_dir, char *err, size_t errlen)
{
        static const struct {
                const char *file;
                bool ranges;
        } files[] = { { "subuid", true }, { "subgid", true }, { "passwd", false }, { "group", false } };
        for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
                int r = scan_ids(l, etc_dir, files[i].file, files[i].ranges, err, errlen);
                if (r < 0)
                        return r;
        }
        return 0;
}

bool sb_limits_within(const struct sb_limits *l, const struct sb_limits *max)
{
        return l->wall_time_s <= max->wall_time_s && l->cpu_time_s <= max->cpu_time_s &&
               l->memory_mb <= max->memory_mb && l->max_processes <= max->max_processes &&
               l->max_open_files <= max->max_open_files && l->tmp_size_mb <= max->tmp_size_mb &&
               l->tmp_inodes <= max->tmp_inodes && l->script_max_bytes <= max->script_max_bytes &&
               l->stdout_max_bytes <= max->stdout_max_bytes && l->result_max_bytes <= max->result_max_bytes &&
               l->files_max_count <= max->files_max_count && l->files_max_bytes <= max->files_max_bytes &&
               l->max_batch <= max->max_batch &&
               l->require_cgroups >= max->require_cgroups && l->uid_base == max->uid_base;
}
