/* verdict.c — deciding what happened in a run, from the kernel's word first and the runner's
 * frame second. Nothing the script can write is trusted: the frame is one message that must
 * parse strictly, and timeouts, signals and exit codes come from the kernel. */
#define _GNU_SOURCE
#include <errno.h>
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
        return (unsigned)s < SB_STATUS_COUNT ? sb_error_kinds[s].name : "internal_error";
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

/* An outcome whose text is always the same: the table's (errors.c). */
static void set_fixed_error(struct sb_outcome *o, enum sb_status s)
{
        set_error(o, s, "%s", sb_error_kinds[s].message);
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
        /* The strict gate first: json-c would take NaN, or the last of two "kind"s. */
        if (jt_validate(json, len, 4) != 0)
                return false;
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
        /* A kind with one fixed text has it from the table, whatever the frame says. */
        if (sb_error_kinds[s].message)
                set_fixed_error(o, s);
        else if (sbuf_append(&o->message, json_object_get_string(message),
                             (size_t)json_object_get_string_len(message)) < 0)
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

/* ---- the frame ------------------------------------------------------------------------- */

/* The most the runner's extras can take (runner.py): the files and the figures, each within
 * files_max_bytes of raw bytes (base64: 4 for 3), RETURN_FILES_MAX paths of RETURN_PATH_MAX
 * bytes escaped to 6 each at worst, and the members' names and punctuation. */
#define RETURN_FILES_MAX 1000
#define FIGURES_MAX 100
#define RETURN_PATH_MAX 1024
size_t sb_extras_max(const struct sb_limits *l)
{
        size_t base64 = (l->files_max_bytes + 2) / 3 * 4;
        return 2 * base64 + RETURN_FILES_MAX * (6 * RETURN_PATH_MAX + 128) + FIGURES_MAX * 64 + 256;
}

/* A batch's entries stay within result_max_bytes, but for the one that says the rest did not
 * fit; each entry's texts are cut to the runner's BATCH_TEXT_MAX. */
#define BATCH_ENTRY_MAX (2 * 6 * 4096 + 512)

size_t sb_frame_max(const struct sb_limits *l, bool extras, bool batch)
{
        size_t result = l->result_max_bytes + (extras ? sb_extras_max(l) : 0) +
                        (batch ? (size_t)l->max_batch * BATCH_ENTRY_MAX : 0);
        return SB_FRAME_HEADER_MAX + (result > SB_ERROR_FRAME_MAX ? result : SB_ERROR_FRAME_MAX);
}

struct frame {
        char tag;
        long long cpu_ms;
        long long peak_rss_kb;
        long long extras_len;    /* R: the JSON object of extras that comes before the value */
        const char *body;
        size_t body_len;
};

/* Digits up to the byte stop, as the runner writes them: no sign, no space, at most 18. */
static bool read_count(const char **p, const char *end, char stop, long long *out)
{
        long long v = 0;
        const char *start = *p;
        for (; *p < end && **p >= '0' && **p <= '9' && *p - start < 18; (*p)++)
                v = v * 10 + (**p - '0');
        if (*p == start || *p >= end || **p != stop)
                return false;
        (*p)++;
        *out = v;
        return true;
}

/* Splits the channel's bytes into tag, usage line and body. False when they do not start
 * with one (the whole frame may still have been cut short: see frame_overflowed). */
static bool parse_frame_header(const struct sbuf *f, struct frame *fr)
{
        if (f->len < 2)
                return false;
        const char *p = f->data + 1, *end = f->data + (f->len < SB_FRAME_HEADER_MAX ? f->len : SB_FRAME_HEADER_MAX);
        if (!read_count(&p, end, ' ', &fr->cpu_ms))
                return false;
        /* "<peak>\n", or "<peak> <extras_len>\n". */
        const char *peak = p;
        fr->extras_len = 0;
        if (!read_count(&p, end, '\n', &fr->peak_rss_kb)) {
                p = peak;
                if (!read_count(&p, end, ' ', &fr->peak_rss_kb) || !read_count(&p, end, '\n', &fr->extras_len))
                        return false;
        }
        fr->tag = f->data[0];
        fr->body = p;
        fr->body_len = f->len - (size_t)(p - f->data);
        return true;
}

/* Whether a member of the extras is one the runner writes, of its type. */
static bool known_extra(const char *name, struct json_object *v)
{
        if (strcmp(name, "files") == 0)
                return json_object_is_type(v, json_type_object);
        if (strcmp(name, "figures") == 0)
                return json_object_is_type(v, json_type_array);
        if (strcmp(name, "files_truncated") == 0 || strcmp(name, "figures_truncated") == 0)
                return json_object_is_type(v, json_type_boolean);
        return false;
}

/* The extras before the value of an R frame: one strict JSON object whose members are the
 * runner's, kept as members (no braces) to go into the answer. Moves fr->body past them.
 * False when they are not what the runner writes. */
static bool take_extras(const struct sb_limits *l, struct frame *fr, struct sb_outcome *o)
{
        size_t n = (size_t)fr->extras_len;
        if (!n)
                return true;
        if (fr->extras_len < 0 || n > fr->body_len || n > sb_extras_max(l) || jt_validate(fr->body, n, 8) != 0)
                return false;
        struct json_tokener *tok = json_tokener_new_ex(8);
        if (!tok)
                return false;
        struct json_object *root = json_tokener_parse_ex(tok, fr->body, (int)n);
        bool ok = root && json_object_is_type(root, json_type_object);
        if (ok) {
                json_object_object_foreach(root, name, value) ok = ok && known_extra(name, value);
        }
        json_object_put(root);
        json_tokener_free(tok);
        if (!ok)
                return false;
        /* The members between the braces, without the whitespace around them: a forged "{ }"
         * has none, and a lone ", " before the answer's "}" would not be JSON. */
        const char *first = (const char *)memchr(fr->body, '{', n) + 1, *last = fr->body + n;
        while (last > first && last[-1] != '}')
                last--;
        last--; /* at the closing brace */
        while (first < last && strchr(" \t\r\n", *first))
                first++;
        while (last > first && strchr(" \t\r\n", last[-1]))
                last--;
        if (last > first && sbuf_append(&o->extras, first, (size_t)(last - first)) < 0)
                return false;
        fr->body += n;
        fr->body_len -= n;
        return true;
}

/* The outcome a whole frame tells, checked as untrusted input: the runner writes only one
 * frame, of a known shape, with no more than result_max_bytes of result. */
static void decide_frame(const struct sb_limits *l, struct frame *fr, struct sb_outcome *o)
{
        if (fr && fr->tag == 'R' && !take_extras(l, fr, o))
                fr = NULL; /* tampered */
        /* A batch's value is the list of its entries (runner.py, _run_batch). */
        if (fr && fr->tag == 'R' && o->batch) {
                const char *v = fr->body, *end = fr->body + fr->body_len;
                while (v < end && strchr(" \t\r\n", *v))
                        v++;
                if (v == end || *v != '[')
                        fr = NULL;
        }
        size_t room = l->result_max_bytes + (o->batch ? (size_t)l->max_batch * BATCH_ENTRY_MAX : 0);
        if (fr && fr->tag == 'R') {
                if (fr->body_len > room) {
                        set_error(o, SB_RESULT_TOO_LARGE, "main() returned more than the %zu-byte result limit",
                                  l->result_max_bytes);
                        return;
                }
                int r = jt_validate(fr->body, fr->body_len, RESULT_MAX_DEPTH);
                if (r == 0) {
                        o->status = SB_OK;
                        (void)sbuf_append(&o->result, fr->body, fr->body_len);
                        return;
                }
                /* Python's json makes one name of dict keys 1 and "1" (or None and "null"), and
                 * of whatever a dict subclass's items() yields: a value that is not JSON. */
                if (r == -EEXIST) {
                        set_error(o, SB_NOT_SERIALIZABLE, "main() function must return JSON serializable data: a "
                                  "dict has keys that become the same JSON name (such as 1 and \"1\")");
                        return;
                }
        }
        /* The runner keeps its error frames under SB_ERROR_FRAME_MAX (and so error texts under
         * 64 KiB); a bigger one is not its. */
        if (fr && fr->tag == 'E' && fr->body_len <= SB_ERROR_FRAME_MAX && parse_error_frame(fr->body, fr->body_len, o))
                return;
        /* Garbage, a second frame, a number the runner cannot write: the script wrote to the
         * channel itself (a whole frame of its own would have passed, as any value it could
         * have returned). Not the script's exception, and not a result. */
        set_fixed_error(o, SB_CHANNEL_TAMPERED);
}

/* ---- the decision ---------------------------------------------------------------------- */

long long sb_memory_ceiling(const struct sb_limits *l)
{
        return ((long long)l->memory_mb << 20) - (16 << 20);
}

const char *sb_timeout_text(unsigned seconds, char *buf, size_t len)
{
        snprintf(buf, len, "Script execution timed out (%u seconds)", seconds);
        return buf;
}

void sb_signal_name(int sig, char *buf, size_t len)
{
        const char *abbrev = sig > 0 && sig < SIGRTMIN ? sigabbrev_np(sig) : NULL;
        if (abbrev)
                snprintf(buf, len, "SIG%s", abbrev);
        else if (sig == SIGRTMIN || sig == SIGRTMAX)
                snprintf(buf, len, "SIGRT%s", sig == SIGRTMIN ? "MIN" : "MAX");
        /* As kill -l counts them: up from SIGRTMIN to the middle, down from SIGRTMAX after. */
        else if (sig > SIGRTMIN && sig < SIGRTMAX && sig - SIGRTMIN <= (SIGRTMAX - SIGRTMIN) / 2)
                snprintf(buf, len, "SIGRTMIN+%d", sig - SIGRTMIN);
        else if (sig > SIGRTMIN && sig < SIGRTMAX)
                snprintf(buf, len, "SIGRTMAX-%d", SIGRTMAX - sig);
        else
                snprintf(buf, len, "SIG%d", sig); /* glibc's own 32 and 33, or no signal at all */
}

static long long timeval_ms(struct timeval tv)
{
        long long s = tv.tv_sec < 0 ? 0 : tv.tv_sec > (1LL << 40) ? (1LL << 40) : tv.tv_sec;
        return s * 1000 + tv.tv_usec / 1000;
}

/* How far short of the CPU limit the kernel's figures for a process killed at it were seen:
 * a tenth, and at least 250 ms (cold mode, limit 1 s: 882 ms reported for the SIGXCPU that
 * fired at 1 s, 1 run in 15). */
static long long cpu_slack_ms(const struct sb_limits *l)
{
        long long tenth = (long long)l->cpu_time_s * 100;
        return tenth > 250 ? tenth : 250;
}

/* The kernel's word: these cannot be forged from inside. A script that ran out of time while
 * at its memory ceiling was thrashing in it (a failed allocation unwinding millions of frames,
 * say): that is a memory blow-up, and reported as one. True when it decided the outcome. */
static bool decide_from_kernel(const struct sb_limits *l, const struct sb_run_facts *st, const struct sb_init_report *rep,
                               struct sb_outcome *o)
{
        long long ceiling = sb_memory_ceiling(l);
        /* Compared in KiB: a corrupt report's figure times 1024 would overflow (fuzz_verdict). */
        bool at_ceiling = rep ? o->peak_rss_kb >= ceiling / 1024 : st->cgroup_peak >= ceiling;
        int ws = rep ? rep->wait_status : 0;
        unsigned limit_s = 0;
        if (st->cpu_limit_hit)
                limit_s = l->cpu_time_s;
        else if (st->deadline_hit)
                limit_s = l->wall_time_s;
        /* SIGXCPU at the soft limit, SIGKILL at the hard one; either only counts as a CPU
         * timeout when the CPU time is really there (a script can send itself either). The
         * figures the kernel reports for a killed many-threaded process on a loaded machine
         * were seen a little short of the limit that fired, hence the slack (cpu_slack_ms()): a
         * script that sends itself SIGXCPU that close to its limit only changes its own
         * verdict's wording. */
        else if (rep && WIFSIGNALED(ws) && (WTERMSIG(ws) == SIGXCPU || WTERMSIG(ws) == SIGKILL) &&
                 o->cpu_ms + cpu_slack_ms(l) >= (long long)l->cpu_time_s * 1000)
                limit_s = l->cpu_time_s;
        if (limit_s && !at_ceiling)
                set_error(o, SB_TIMEOUT, "%s", sb_timeout_text(limit_s, (char[64]){ 0 }, 64));
        /* Any OOM kill in the sandbox's cgroup is a memory blow-up, whichever process it hit. */
        else if (limit_s || st->oom_killed)
                set_fixed_error(o, SB_MEMORY_LIMIT);
        return limit_s || st->oom_killed;
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
        /* The run was over before init's report came in (the runner had sent its frame and
         * closed its pipes; see collect()): the frame's usage line gives the figures, whether
         * or not the rest of the frame is any good. */
        struct frame fr;
        bool framed = parse_frame_header(&st->frame, &fr);
        if (framed && !have_report) {
                o->cpu_ms = fr.cpu_ms;
                o->peak_rss_kb = (long)fr.peak_rss_kb;
        }
        /* The cgroup counts every process, orphans reaped by init included. */
        if (st->cgroup_cpu_ms > o->cpu_ms)
                o->cpu_ms = st->cgroup_cpu_ms;
        /* Killed at the deadline, cold, neither report nor frame came: the memory cgroup's peak
         * (all the sandbox's pages, /tmp's too) is the figure there is. */
        if (!have_report && !framed && st->cgroup_peak > 0)
                o->peak_rss_kb = (long)(st->cgroup_peak / 1024);
        if (decide_from_kernel(l, st, have_report ? &rep : NULL, o))
                return;

        /* Then the runner's frame, checked as untrusted input. It counts if the process
         * exited normally, or if the run was over before init's report came in. */
        int ws = rep.wait_status;
        if (st->frame_overflowed) {
                set_error(o, SB_RESULT_TOO_LARGE, "main() returned more than the %zu-byte result limit",
                          l->result_max_bytes);
                return;
        }
        if (st->frame.len > 0 && (!have_report || (WIFEXITED(ws) && WEXITSTATUS(ws) == 0))) {
                decide_frame(l, framed ? &fr : NULL, o);
                return;
        }
        if (have_report && WIFSIGNALED(ws)) {
                char name[SB_SIGNAME_MAX];
                o->term_signal = WTERMSIG(ws);
                sb_signal_name(o->term_signal, name, sizeof(name));
                set_error(o, SB_KILLED, "Script execution error: killed by signal %s", name);
                return;
        }
        o->exit_code = have_report && WIFEXITED(ws) ? WEXITSTATUS(ws) : -1;
        set_error(o, SB_EXITED, "Script exited with status %d before main() returned", o->exit_code);
}
