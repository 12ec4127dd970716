/* fuzz_verdict.c — sb_decide() on what a run left behind, then the response body built from
 * the outcome. The frame (the result channel) is written by the runner, and so can be forged
 * by the script: it is arbitrary bytes here. The status report comes from init or the zygote,
 * the kernel's wait status and rusage: it is arbitrary too, of the right size or not.
 *
 * Input: one byte of flags, then (when flagged) the report's bytes, then the frame.
 * Oracles: the response body is one strict JSON value; a success carries a validated result
 * that came from an 'R' frame. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "jsontext.h"
#include "sandbox.h"
#include "verdict.h"

enum {
        F_OVERFLOW = 1,   /* the frame went past result_max_bytes */
        F_DEADLINE = 2,   /* the worker's wall-clock kill */
        F_OOM = 4,        /* the cgroup's OOM killer */
        F_REPORT = 8,     /* init's report arrived */
        F_SHORT = 16,     /* ... cut short (it must then be ignored) */
        F_PEAK = 32,      /* the cgroup's peak is known and at the ceiling */
        F_CPU = 64,       /* the worker's kill at the request's CPU limit */
        F_CGROUP_CPU = 128, /* the cgroup's CPU figure is known (from the next 4 bytes, in ms) */
};

/* sb_outcome_free's work (sandbox/sandbox.c, which this harness does not link): every buffer,
 * extras too, which a frame's extras fill before the rest of the frame is found tampered. */
static void free_outcome(struct sb_outcome *o)
{
        sbuf_free(&o->stdout_buf);
        sbuf_free(&o->stderr_buf);
        sbuf_free(&o->result);
        sbuf_free(&o->message);
        sbuf_free(&o->traceback);
        sbuf_free(&o->extras);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (size < 1)
                return 0;
        uint8_t flags = data[0];
        data++, size--;
        struct sb_config config;
        sb_config_default(&config);
        struct sb_limits limits = config.limits;
        struct sb_outcome out = { 0 };
        struct sb_run_facts facts = {
                .out = &out,
                .frame_overflowed = flags & F_OVERFLOW,
                .deadline_hit = flags & F_DEADLINE,
                .oom_killed = flags & F_OOM,
                .cgroup_peak = flags & F_PEAK ? (long long)limits.memory_mb << 20 : -1,
                .cpu_limit_hit = flags & F_CPU,
                .cgroup_cpu_ms = -1,
        };
        if (flags & F_CGROUP_CPU) {
                uint32_t ms;
                if (size < sizeof(ms))
                        return 0;
                memcpy(&ms, data, sizeof(ms));
                facts.cgroup_cpu_ms = ms;
                data += sizeof(ms), size -= sizeof(ms);
        }
        if (flags & F_REPORT) {
                size_t n = sizeof(struct sb_init_report);
                if (flags & F_SHORT)
                        n = n / 2;
                if (size < n)
                        return 0;
                (void)sbuf_append(&facts.status, data, n);
                data += n, size -= n;
        }
        (void)sbuf_append(&facts.frame, data, size);
        (void)sbuf_append(&out.stdout_buf, data, size); /* what the script printed: any bytes */

        sb_decide(&limits, &facts);

        if (strcmp(sb_status_kind(out.status), "internal_error") == 0) /* not a status of the API */
                abort();
        if (out.status == SB_OK && (size < 2 || data[0] != 'R' || out.result.len == 0))
                abort();
        struct sbuf body = { 0 };
        if (sb_outcome_to_json(&out, true, &body) == 0 && jt_validate(body.data, body.len, 2001) != 0)
                abort();
        sbuf_free(&body);
        sbuf_free(&facts.frame);
        sbuf_free(&facts.status);
        sbuf_free(&facts.setup_err);
        free_outcome(&out);
        return 0;
}
