/* keys-main.c — pyexec-keys: API keys for the operator, and their nginx side for serve.sh.
 *
 *   pyexec-keys new ID [rps=N] [burst=N] [concurrency=N]
 *       a new random secret (line 1: give it to the client; it is stored nowhere) and its line
 *       for the keys file (line 2: append it there, then reload)
 *   pyexec-keys check [-c CONFIG] [FILE]
 *       parses FILE (default: the config's api_keys_file) as the pool would; says how many keys
 *   pyexec-keys nginx -c CONFIG DIR
 *       writes DIR/keys_http.conf, keys_auth.conf and keys_limits.conf, the parts of nginx's
 *       config that follow the keys file (nginx/nginx.conf.in includes them); empty of
 *       directives when the config names no keys file
 *
 * Why zones per distinct limit, not per key: limit_req has one rate per zone and one burst
 * per directive, limit_conn one number per directive, and a zone is at least 32 KiB. So keys
 * are grouped by their (rps, burst) and by their concurrency; each group is a zone whose key
 * is a variable that maps the group's key ids to themselves and every other id to "" (which
 * nginx does not count). Zones are named by their values (pyexec_rate_5_10), so a reload that
 * keeps a key's limits keeps its counts. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "keys.h"
#include "sandbox.h"

/* Each zone holds at most one entry per key; KEYS_MAX of either kind fit in this. */
#define ZONE_SIZE "256k"

static int usage(void)
{
        fprintf(stderr, "usage: pyexec-keys new ID [rps=N] [burst=N] [concurrency=N]\n"
                        "       pyexec-keys check [-c CONFIG] [FILE]\n"
                        "       pyexec-keys nginx -c CONFIG DIR\n");
        return 2;
}

static int cmd_new(int argc, char **argv)
{
        if (argc < 1)
                return usage();
        char options[256] = "";
        size_t used = 0;
        for (int i = 1; i < argc; i++) {
                int n = snprintf(options + used, sizeof(options) - used, "%s%s", i > 1 ? " " : "", argv[i]);
                if (n < 0 || (size_t)n >= sizeof(options) - used) {
                        fprintf(stderr, "pyexec-keys: too many options\n");
                        return 2;
                }
                used += (size_t)n;
        }
        if (!keys_id_valid(argv[0], strlen(argv[0]))) {
                fprintf(stderr, "pyexec-keys: '%s' is not a key id (1 to %d of A-Z a-z 0-9 _ . -, starting with a "
                                "letter or digit)\n", argv[0], KEY_ID_MAX);
                return 2;
        }
        char secret[KEY_SECRET_MAX + 1], line[512], err[512];
        int r = keys_new_secret(secret, sizeof(secret));
        if (r < 0) {
                fprintf(stderr, "pyexec-keys: no randomness: %s\n", strerror(-r));
                return 1;
        }
        if (keys_format_line(argv[0], secret, options, line, sizeof(line)) < 0) {
                fprintf(stderr, "pyexec-keys: the key id or its options are too long\n");
                return 2;
        }
        /* The line as the pool will read it: a bad id or option is refused now, not at start. */
        static struct key_set one;
        const struct key_limits defaults = { 0 };
        if (keys_parse(line, strlen(line), "the new line", &defaults, &one, err, sizeof(err)) < 0) {
                fprintf(stderr, "pyexec-keys: %s\n", err);
                return 2;
        }
        printf("%s\n%s\n", secret, line);
        explicit_bzero(secret, sizeof(secret));
        return fflush(stdout) == 0 ? 0 : 1;
}

static int load_config(const char *path, struct sb_config *c)
{
        char err[512];
        sb_config_default(c);
        if (path && sb_config_load(c, path, err, sizeof(err)) < 0) {
                fprintf(stderr, "pyexec-keys: %s\n", err);
                return -1;
        }
        return 0;
}

static int load_keys(const struct sb_config *c, const char *file, struct key_set *set)
{
        char err[512];
        const struct key_limits defaults = { .rps = c->service.key_rps, .burst = c->service.key_burst,
                                             .concurrency = c->service.key_concurrency };
        if (keys_load(file, &defaults, set, err, sizeof(err)) < 0) {
                fprintf(stderr, "pyexec-keys: %s\n", err);
                return -1;
        }
        return 0;
}

static int cmd_check(int argc, char **argv)
{
        const char *config_path = NULL, *file = NULL;
        for (int i = 0; i < argc; i++) {
                if (strcmp(argv[i], "-c") == 0 && i + 1 < argc)
                        config_path = argv[++i];
                else if (!file && argv[i][0] != '-')
                        file = argv[i];
                else
                        return usage();
        }
        struct sb_config c;
        if (load_config(config_path, &c) < 0)
                return 1;
        if (!file && !c.service.api_keys_file[0]) {
                fprintf(stderr, "pyexec-keys: the config names no api_keys_file, and no FILE was given\n");
                return 1;
        }
        static struct key_set set;
        if (load_keys(&c, file ? file : c.service.api_keys_file, &set) < 0)
                return 1;
        printf("%u keys\n", set.count);
        return 0;
}

/* ---- nginx ------------------------------------------------------------------------------ */

/* One map "k:$pyexec_key" -> id for the keys whose limits match (the "k:" prefix: an id such
 * as "default" or "include" would otherwise be one of map's keywords). */
static void write_map(FILE *f, const struct key_set *set, const char *var,
                      bool (*member)(const struct key_limits *, const struct key_limits *), const struct key_limits *group)
{
        fprintf(f, "map \"k:$pyexec_key\" $%s {\n    default \"\";\n", var);
        for (unsigned i = 0; i < set->count; i++)
                if (member(&set->keys[i].limits, group))
                        fprintf(f, "    \"k:%s\" \"%s\";\n", set->keys[i].id, set->keys[i].id);
        fprintf(f, "}\n");
}

static bool same_rate(const struct key_limits *a, const struct key_limits *b)
{
        return a->rps == b->rps && a->burst == b->burst;
}

static bool same_concurrency(const struct key_limits *a, const struct key_limits *b)
{
        return a->concurrency == b->concurrency;
}

/* Whether an earlier key than i is in the same group (the group is then written already). */
static bool seen_before(const struct key_set *set, unsigned i,
                        bool (*member)(const struct key_limits *, const struct key_limits *))
{
        for (unsigned j = 0; j < i; j++)
                if (member(&set->keys[j].limits, &set->keys[i].limits))
                        return true;
        return false;
}

static void write_zones(FILE *http, FILE *limits, const struct key_set *set)
{
        for (unsigned i = 0; i < set->count; i++) {
                const struct key_limits *l = &set->keys[i].limits;
                char var[64];
                if (l->rps && !seen_before(set, i, same_rate)) {
                        snprintf(var, sizeof(var), "pyexec_rate_%u_%u", l->rps, l->burst);
                        write_map(http, set, var, same_rate, l);
                        fprintf(http, "limit_req_zone $%s zone=%s:" ZONE_SIZE " rate=%ur/s;\n", var, var, l->rps);
                        fprintf(limits, "limit_req zone=%s burst=%u nodelay;\n", var, l->burst);
                }
                if (l->concurrency && !seen_before(set, i, same_concurrency)) {
                        snprintf(var, sizeof(var), "pyexec_conc_%u", l->concurrency);
                        write_map(http, set, var, same_concurrency, l);
                        fprintf(http, "limit_conn_zone $%s zone=%s:" ZONE_SIZE ";\n", var, var);
                        fprintf(limits, "limit_conn %s %u;\n", var, l->concurrency);
                }
        }
}

static FILE *open_part(const char *dir, const char *name, char *tmp, size_t size)
{
        snprintf(tmp, size, "%s/%s.new", dir, name);
        FILE *f = fopen(tmp, "we");
        if (!f)
                fprintf(stderr, "pyexec-keys: %s: %s\n", tmp, strerror(errno));
        else
                fprintf(f, "# Written by pyexec-keys nginx (scripts/serve.sh) from the keys file; do not edit.\n");
        return f;
}

/* Closes f and renames tmp over dir/name, so that nginx never reads half a file. */
static int close_part(FILE *f, const char *tmp, const char *dir, const char *name)
{
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", dir, name);
        if (fclose(f) != 0 || rename(tmp, path) < 0) {
                fprintf(stderr, "pyexec-keys: %s: %s\n", path, strerror(errno));
                return -1;
        }
        return 0;
}

static int cmd_nginx(int argc, char **argv)
{
        if (argc != 3 || strcmp(argv[0], "-c") != 0)
                return usage();
        const char *dir = argv[2];
        struct sb_config c;
        static struct key_set set;
        if (load_config(argv[1], &c) < 0 || (c.service.api_keys_file[0] && load_keys(&c, c.service.api_keys_file, &set) < 0))
                return 1;
        char tmp[3][4096];
        FILE *http = open_part(dir, "keys_http.conf", tmp[0], sizeof(tmp[0]));
        FILE *auth = open_part(dir, "keys_auth.conf", tmp[1], sizeof(tmp[1]));
        FILE *limits = open_part(dir, "keys_limits.conf", tmp[2], sizeof(tmp[2]));
        if (!http || !auth || !limits)
                return 1;
        /* The authenticator's answer names the key: every later step is keyed by it. Declared
         * without keys too (never set then), for nginx.conf's map of it. */
        if (c.service.api_keys_file[0]) {
                fprintf(auth, "auth_request /_pyexec_auth;\n");
                write_zones(http, limits, &set);
        }
        fprintf(auth, "auth_request_set $pyexec_auth_key $upstream_http_x_pyexec_key;\n");
        int r = close_part(http, tmp[0], dir, "keys_http.conf");
        r |= close_part(auth, tmp[1], dir, "keys_auth.conf");
        r |= close_part(limits, tmp[2], dir, "keys_limits.conf");
        return r ? 1 : 0;
}

int main(int argc, char **argv)
{
        if (argc < 2)
                return usage();
        if (strcmp(argv[1], "new") == 0)
                return cmd_new(argc - 2, argv + 2);
        if (strcmp(argv[1], "check") == 0)
                return cmd_check(argc - 2, argv + 2);
        if (strcmp(argv[1], "nginx") == 0)
                return cmd_nginx(argc - 2, argv + 2);
        return usage();
}
