/* pyexec-run — run one script file in exactly the sandbox the service uses and print the
 * same JSON the service would answer with.
 *
 *   pyexec-run [-c CONFIG] [-v] [-w|-W] SCRIPT.py|-
 *
 * -w runs it warm (forked from pyexec-zygote, as the service does by default), -W cold
 * (execve of python3); without either, the config's "warm" setting decides.
 * Exit status: 0 when the script ran (whatever it did), 1 on a usage error, 2 when the sandbox
 * could not be set up (the JSON then has error_kind "sandbox_error"). With -v the script's
 * standard error and the usage figures go to standard error. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <limits.h>
#include <stdlib.h>

#include "imports.h"
#include "jsontext.h"
#include "sandbox.h"
#include "zygote.h"

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

/* The warm interpreter the service would use for this script (imports.c). 0, or -1 with a
 * message. */
static int start_interpreter(const struct sb_limits *limits, const struct sbuf *script, bool verbose,
                             struct sb_zygote *zygote)
{
        char path[PATH_MAX], preload[sizeof(limits->warm_preload)], err[512];
        sb_zygote_default_path(path, sizeof(path));
        int need = limits->warm_tiers ? sb_preload_needed(script->data ? script->data : "", script->len,
                                                           limits->warm_preload)
                                      : sb_preload_count(limits->warm_preload);
        sb_preload_prefix(limits->warm_preload, need, preload, sizeof(preload));
        if (verbose)
                fprintf(stderr, "pyexec-run: warm, preloaded: \"%s\"\n", preload);
        if (sb_zygote_start(zygote, path, preload, err, sizeof(err)) < 0) {
                fprintf(stderr, "pyexec-run: warm mode unavailable: %s\n", err);
                return -1;
        }
        return 0;
}

/* The service's answer when the sandbox broke: 500 sandbox_error's body. */
static void print_sandbox_error(const char *err)
{
        struct sbuf json = { 0 };
        (void)sbuf_puts(&json, "{\"error\": ");
        (void)jt_append_string(&json, err, strlen(err));
        (void)sbuf_puts(&json, ", \"stdout\": \"\", \"error_kind\": \"sandbox_error\"}\n");
        fputs(json.data ? json.data : "", stdout);
        sbuf_free(&json);
}

int main(int argc, char **argv)
{
        const char *config = getenv("PYEXEC_CONFIG");
        bool verbose = false;
        int mode = -1; /* -1: as configured, 1 warm, 0 cold */
        int opt;
        while ((opt = getopt(argc, argv, "c:vwWh")) != -1) {
                switch (opt) {
                case 'c': config = optarg; break;
                case 'v': verbose = true; break;
                case 'w': mode = 1; break;
                case 'W': mode = 0; break;
                default:
                        fprintf(stderr, "usage: %s [-c CONFIG] [-v] [-w|-W] SCRIPT.py|-\n", argv[0]);
                        return opt == 'h' ? 0 : 1;
                }
        }
        if (optind != argc - 1) {
                fprintf(stderr, "usage: %s [-c CONFIG] [-v] [-w|-W] SCRIPT.py|-\n", argv[0]);
                return 1;
        }

        struct sb_limits limits;
        sb_limits_default(&limits);
        char err[512];
        if ((config && sb_limits_load(&limits, config, err, sizeof(err)) < 0) ||
            sb_limits_check_ids(&limits, "/etc", err, sizeof(err)) < 0) {
                fprintf(stderr, "pyexec-run: %s\n", err);
                return 1;
        }
        limits.id_slot = SB_ID_SLOT_RUN;

        struct sbuf script = { 0 };
        int r = read_file(argv[optind], &script);
        if (r < 0) {
                fprintf(stderr, "pyexec-run: %s: %s\n", argv[optind], strerror(-r));
                return 1;
        }
        if (script.len > limits.script_max_bytes) {
                fprintf(stderr, "pyexec-run: script is %zu bytes, over the %zu-byte limit\n", script.len,
                        limits.script_max_bytes);
                sbuf_free(&script);
                return 1;
        }

        if (mode >= 0)
                limits.warm = (unsigned)mode;
        struct sb_zygote zygote = { -1, -1 };
        if (limits.warm && start_interpreter(&limits, &script, verbose, &zygote) < 0)
                return 2;

        struct sb_outcome out;
        struct sbuf json = { 0 };
        r = sb_run(&limits, limits.warm ? &zygote : NULL, script.data ? script.data : "", script.len, &out, err,
                   sizeof(err));
        sb_zygote_stop(&zygote);
        sbuf_free(&script);
        if (r < 0) {
                print_sandbox_error(err);
                return 2;
        }
        if (sb_outcome_to_json(&out, &json) < 0 || sbuf_puts(&json, "\n") < 0) {
                fprintf(stderr, "pyexec-run: out of memory\n");
                return 2;
        }
        fwrite(json.data, 1, json.len, stdout);
        if (verbose) {
                fwrite(out.stderr_buf.data ? out.stderr_buf.data : "", 1, out.stderr_buf.len, stderr);
                fprintf(stderr, "pyexec-run: %s, wall %lld ms, cpu %lld ms, peak rss %ld KiB\n",
                        sb_status_kind(out.status), out.wall_ms, out.cpu_ms, out.peak_rss_kb);
        }
        sbuf_free(&json);
        sb_outcome_free(&out);
        return 0;
}
