/* report.c — the API's JSON body for an outcome. Shared by the worker and pyexec-run so both
 * print the same bytes. */
#include <string.h>

#include "jsontext.h"
#include "sandbox.h"

static int append_field(struct sbuf *out, const char *name, const struct sbuf *value)
{
        int r = sbuf_printf(out, ", \"%s\": ", name);
        if (r == 0)
                r = jt_append_string(out, value->data ? value->data : "", value->len);
        return r;
}

int sb_outcome_to_json(const struct sb_outcome *o, bool usage, struct sbuf *out)
{
        int r;
        if (o->status == SB_OK) {
                r = sbuf_puts(out, o->batch ? "{\"results\": " : "{\"result\": ");
                if (r == 0)
                        r = sbuf_append(out, o->result.data, o->result.len);
                if (r == 0)
                        r = append_field(out, "stdout", &o->stdout_buf);
        } else {
                r = sbuf_puts(out, "{\"error\": ");
                if (r == 0)
                        r = jt_append_string(out, o->message.data ? o->message.data : "", o->message.len);
                if (r == 0)
                        r = append_field(out, "stdout", &o->stdout_buf);
                if (r == 0)
                        r = sbuf_printf(out, ", \"error_kind\": \"%s\"", sb_status_kind(o->status));
                if (r == 0 && o->status == SB_EXCEPTION && o->traceback.len)
                        r = append_field(out, "traceback", &o->traceback);
        }
        if (r == 0 && o->stdout_truncated)
                r = sbuf_puts(out, ", \"stdout_truncated\": true");
        /* Members the verdict validated (verdict.c, take_extras). */
        if (r == 0 && o->status == SB_OK && o->extras.len) {
                r = sbuf_puts(out, ", ");
                r = r ? r : sbuf_append(out, o->extras.data, o->extras.len);
        }
        if (r == 0 && usage)
                r = sbuf_printf(out, ", \"usage\": {\"wall_ms\": %lld, \"cpu_ms\": %lld, \"peak_rss_kb\": %ld}",
                                o->wall_ms, o->cpu_ms, o->peak_rss_kb);
        if (r == 0)
                r = sbuf_puts(out, "}");
        return r;
}
