/* pyexec-run — run one script file in exactly the sandbox the service uses and print the
 * same JSON the service would answer with.
 *
 *   pyexec-run [-c CONFIG] [-v] [-w|-W] SCRIPT.py|-
 *
 * -w runs it warm (forked from pyexec-zygote, as the service does by default), -W cold
 * (execve of python3); without either, the config's "warm" setting decides.
 * The choice of interpreter is the service's own (the sandbox library's provider): the warm
 * interpreter whose preloaded modules the script imports, cold when warm fails.
 * Exit status: 0 when the script ran (whatever it did), 1 on a usage error, 2 when the sandbox
 * could not be set up (the JSON then is the service's 500 sandbox_error body). With -v the
 * script's standard error, the provider's events and the usage figures go to standard error. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sandbox.h"

static int read_file(const char *path, struct sbuf *out)
{
        int fd = strcmp(path, "-") == 0 ? dup(0) : open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        char chunk[65536];
        for (;;) {
                ssize_t n = read(fd, chunk, sizeof(chunk));
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0) {
                        int e = n < 0 ? -errno : 0;
                        (void)close(fd);
                        return e;
                }
                if (sbuf_append(out, chunk, (size_t)n) < 0) {
                        (void)close(fd);
                        return -ENOMEM;
                }
        }
}

/* The service's answer when the sandbox broke: 500 sandbox_error's body. */
static void print_sandbox_error(const char *err)
{
        struct sbuf json = { 0 };
        char message[700];
        snprintf(message, sizeof(message), "Sandbox unavailable, the script was not run: %s", err);
        (void)sb_error_json("sandbox_error", message, &json);
        (void)sbuf_puts(&json, "\n");
        fputs(json.data ? json.data : "", stdout);
        sbuf_free(&json);
}

static void print_event(void *ctx, enum sb_event ev, const char *detail)
{
        (void)ctx;
        (void)ev;
        fprintf(stderr, "pyexec-run: %s\n", detail);
}

struct options {
        const char *config_path, *script_path;
        bool verbose;
        int mode; /* -1: as configured, 1 warm, 0 cold */
};

/* 0 to go on; else the exit status (after the usage text). */
static int parse_args(int argc, char **argv, struct options *o)
{
        *o = (struct options){ .config_path = getenv("PYEXEC_CONFIG"), .mode = -1 };
        int opt;
        bool bad = false, help = false;
        while (!bad && !help && (opt = getopt(argc, argv, "c:vwWh")) != -1) {
                switch (opt) {
                case 'c': o->config_path = optarg; break;
                case 'v': o->verbose = true; break;
                case 'w': o->mode = 1; break;
                case 'W': o->mode = 0; break;
                case 'h': help = true; break;
                default: bad = true; break;
                }
        }
        if (!bad && !help && optind == argc - 1) {
                o->script_path = argv[optind];
                return 0;
        }
        fprintf(stderr, "usage: %s [-c CONFIG] [-v] [-w|-W] SCRIPT.py|-\n", argv[0]);
        return help ? -1 : 1;
}

/* The config the service would use, and the script. 0, or the exit status after a message. */
static int load_inputs(const struct options *o, struct sb_config *config, struct sbuf *script)
{
        char err[512];
        sb_config_default(config);
        if ((o->config_path && sb_config_load(config, o->config_path, err, sizeof(err)) < 0) ||
            sb_limits_check_ids(&config->limits, "/etc", err, sizeof(err)) < 0) {
                fprintf(stderr, "pyexec-run: %s\n", err);
                return 1;
        }
        if (o->mode >= 0)
                config->supply.warm = (unsigned)o->mode;
        config->supply.prefork = 0; /* one script: nothing to prepare ahead */
        int r = read_file(o->script_path, script);
        if (r < 0) {
                fprintf(stderr, "pyexec-run: %s: %s\n", o->script_path, strerror(-r));
                return 1;
        }
        if (script->len > config->limits.script_max_bytes) {
                fprintf(stderr, "pyexec-run: script is %zu bytes, over the %zu-byte limit\n", script->len,
                        config->limits.script_max_bytes);
                return 1;
        }
        return 0;
}

static void print_outcome(const struct sb_outcome *out, bool verbose)
{
        struct sbuf json = { 0 };
        if (sb_outcome_to_json(out, false, &json) < 0 || sbuf_puts(&json, "\n") < 0)
                fprintf(stderr, "pyexec-run: out of memory\n");
        else
                fwrite(json.data, 1, json.len, stdout);
        sbuf_free(&json);
        if (verbose) {
                fwrite(out->stderr_buf.data ? out->stderr_buf.data : "", 1, out->stderr_buf.len, stderr);
                fprintf(stderr, "pyexec-run: %s, wall %lld ms, cpu %lld ms, peak rss %ld KiB, interpreter %s\n",
                        sb_status_kind(out->status), out->wall_ms, out->cpu_ms, out->peak_rss_kb, out->interpreter);
        }
}

int main(int argc, char **argv)
{
        struct options o;
        int r = parse_args(argc, argv, &o);
        if (r != 0)
                return r < 0 ? 0 : r;
        struct sb_config config;
        struct sbuf script = { 0 };
        if ((r = load_inputs(&o, &config, &script)) != 0) {
                sbuf_free(&script);
                return r;
        }
        struct sb_provider_options po = { .id_slot = SB_ID_SLOT_RUN, .on_event = o.verbose ? print_event : NULL };
        struct sb_provider *provider = NULL;
        struct sb_job job = { .script = script.data ? script.data : "", .script_len = script.len };
        struct sb_outcome out;
        char err[512];
        r = sb_provider_new(&config, &po, &provider, err, sizeof(err));
        if (r == 0)
                r = sb_provider_run(provider, &job, &out, err, sizeof(err));
        sb_provider_free(provider);
        sbuf_free(&script);
        if (r < 0) {
                print_sandbox_error(err);
                return 2;
        }
        print_outcome(&out, o.verbose);
        sb_outcome_free(&out);
        return 0;
}
