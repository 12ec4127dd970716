/* verdict.c — deciding what happened in a run, from the kernel's word first and the runner's
 * frame second. Nothing the script can write is trusted: the frame is one message that must
 * parse strictly, and timeouts, signals and exit codes come from the kernel. */
#define _GNU_SOURCE
#include <json-c/json.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include "internal.h"
#include "jsontext.h"
#include "sandbox.h"
#include "verdict.h"

/* Results are nested no deeper than Python's own recursion limit allows. */
#define RESULT_MAX_DEPTH 2000

const char *sb_status_kind(enum sb_status s)
{
        switch (s) {
        case SB_OK: return "ok";
        case SB_NO_MAIN: return "no_main";
        case SB_SYNTAX_ERROR: return "syntax_error";
        case SB_NOT_SERIALIZABLE: return "not_serializable";
        case SB_EXCEPTION: return "exception";
        case SB_TIMEOUT: return "timeout";
        case SB_MEMORY_LIMIT: return "memory_limit";
        case SB_RESULT_TOO_LARGE: return "result_too_large";
        case SB_EXITED: return "exited";
        case SB_KILLED: return "killed";
        }
        return "internal_error";
}


static void set_error(struct sb_outcome *o, enum sb_status s, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
static void set_error(struct sb_outcome *o, enum sb_status s, const char *fmt, ...)
{
        char msg[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        o->status = s;
        o->message.len = 0;
        (void)sbuf_puts(&o->message, msg);
}

static enum sb_status status_from_kind(const char *kind)
{
        static const enum sb_status frame_kinds[] = { SB_NO_MAIN, SB_SYNTAX_ERROR, SB_NOT_SERIALIZABLE,
                                                      SB_EXCEPTION, SB_MEMORY_LIMIT, SB_RESULT_TOO_LARGE };
        for (size_t i = 0; i < ARRAY_SIZE(frame_kinds); i++)
                if (strcmp(kind, sb_status_kind(frame_kinds[i])) == 0)
                        return frame_kinds[i];
        return SB_OK; /* not a kind a frame may carry */
}

/* The runner's "E" frame: {"kind", "message", "traceback"}. Returns false if malformed. */
static bool parse_error_frame(const char *json, size_t len, struct sb_outcome *o)
{
        bool ok = false;
        struct json_tokener *tok = json_tokener_new_ex(4);
        if (!tok)
                return false;
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
        struct json_object *root = json_tokener_parse_ex(tok, json, (int)len);
        struct json_object *kind, *message, *tb;
        if (!root || json_tokener_get_error(tok) != json_tokener_success || (size_t)json_tokener_get_parse_end(tok) != len)
                goto exit;
        if (!json_object_object_get_ex(root, "kind", &kind) || !json_object_is_type(kind, json_type_string) ||
            !json_object_object_get_ex(root, "message", &message) || !json_object_is_type(message, json_type_string))
                goto exit;
        enum sb_status s = status_from_kind(json_object_get_string(kind));
        if (s == SB_OK)
                goto exit;
        o->status = s;
        o->message.len = 0;
        if (sbuf_append(&o->message, json_object_get_string(message), (size_t)json_object_get_string_len(message)) < 0)
                goto exit;
        if (json_object_object_get_ex(root, "traceback", &tb) && json_object_is_type(tb, json_type_string) &&
            s == SB_EXCEPTION)
                (void)sbuf_append(&o->traceback, json_object_get_string(tb), (size_t)json_object_get_string_len(tb));
        ok = true;
exit:
        json_object_put(root);
        json_tokener_free(tok);
        return ok;
}

/* Clamped to 2^40 s (35,000 years): the report is read from a pipe, and a corrupt one must not
 * overflow the sum (undefined behaviour; found by tests/fuzz/fuzz_verdict.c). */
static long long timeval_ms(struct timeval tv)
{
        long long s = tv.tv_sec < 0 ? 0 : tv.tv_sec > (1LL << 40) ? (1LL << 40) : tv.tv_sec;
        return s * 1000 + tv.tv_usec / 1000;
}

void sb_decide(const struct sb_limits *l, struct sb_run_facts *st)
{
        struct sb_outcome *o = st->out;
        struct sb_init_report rep = { 0 };
        bool have_report = st->status.len == sizeof(rep);
        if (have_report) {
                memcpy(&rep, st->status.data, sizeof(rep));
                o->cpu_ms = timeval_ms(rep.usage.ru_utime) + timeval_ms(rep.usage.ru_stime);
                o->peak_rss_kb = rep.usage.ru_maxrss;
        }

        /* The kernel's word first: these cannot be forged from inside. A script that ran out of
         * time while at its memory ceiling was thrashing in it (a failed allocation unwinding
         * millions of frames, say): that is a memory blow-up, and reported as one. */
        long long ceiling = ((long long)l->memory_mb << 20) - (16 << 20);
        /* Compared in KiB: peak_rss_kb * 1024 could overflow (ceiling is a multiple of 1024). */
        bool at_ceiling = have_report ? o->peak_rss_kb >= ceiling / 1024 : st->cgroup_peak >= ceiling;
        if (st->deadline_hit) {
                if (at_ceiling)
                        set_error(o, SB_MEMORY_LIMIT, "Script execution error: Memory limit exceeded");
                else
                        set_error(o, SB_TIMEOUT, "Script execution timed out (%u seconds)", l->wall_time_s);
                return;
        }
        int ws = rep.wait_status;
        /* SIGXCPU at the soft limit, SIGKILL at the hard one; either only counts as a CPU
         * timeout when the CPU time is really there (a script can send itself either). */
        if (have_report && WIFSIGNALED(ws) && (WTERMSIG(ws) == SIGXCPU || WTERMSIG(ws) == SIGKILL) &&
            o->cpu_ms >= (long long)l->cpu_time_s * 1000 - 50) {
                if (at_ceiling)
                        set_error(o, SB_MEMORY_LIMIT, "Script execution error: Memory limit exceeded");
                else
                        set_error(o, SB_TIMEOUT, "Script execution timed out (%u seconds)", l->cpu_time_s);
                return;
        }
        /* Any OOM kill in the sandbox's cgroup is a memory blow-up, whichever process it hit. */
        if (st->oom_killed) {
                set_error(o, SB_MEMORY_LIMIT, "Script execution error: Memory limit exceeded");
                return;
        }

        /* Then the runner's frame, checked as untrusted input. It counts if the process
         * exited normally, or if the run was over before init's report came in (the runner
         * had sent its frame and closed its pipes; see collect()). */
        if (st->frame_overflowed) {
                set_error(o, SB_RESULT_TOO_LARGE, "main() returned more than the %zu-byte result limit",
                          l->result_max_bytes);
                return;
        }
        if (st->frame.len > 0 && (!have_report || (WIFEXITED(ws) && WEXITSTATUS(ws) == 0))) {
                char tag = st->frame.data[0];
                const char *line = st->frame.data + 1;
                const char *nl = memchr(line, '\n', st->frame.len - 1);
                long long cpu = 0;
                long rss = 0;
                if (nl && sscanf(line, "%lld %ld", &cpu, &rss) == 2 && !have_report) {
                        o->cpu_ms = cpu;
                        o->peak_rss_kb = rss;
                }
                const char *body = nl ? nl + 1 : NULL;
                size_t body_len = nl ? st->frame.len - (size_t)(body - st->frame.data) : 0;
                if (body && tag == 'R' && jt_validate(body, body_len, RESULT_MAX_DEPTH) == 0) {
                        o->status = SB_OK;
                        (void)sbuf_append(&o->result, body, body_len);
                        return;
                }
                if (body && tag == 'E' && parse_error_frame(body, body_len, o))
                        return;
                set_error(o, SB_EXCEPTION, "Script execution error: the result channel was written to by the script");
                return;
        }

        if (have_report && WIFSIGNALED(ws)) {
                int sig = WTERMSIG(ws);
                const char *abbrev = sigabbrev_np(sig);
                o->term_signal = sig;
                set_error(o, SB_KILLED, "Script execution error: killed by signal SIG%s", abbrev ? abbrev : "UNKNOWN");
                return;
        }
        o->exit_code = have_report && WIFEXITED(ws) ? WEXITSTATUS(ws) : -1;
        set_error(o, SB_EXITED, "Script exited with status %d before main() returned", o->exit_code);
}

