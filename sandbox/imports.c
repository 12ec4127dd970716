/* imports.c — which warm interpreter a script needs, judged from its import statements.
 *
 * A fork costs in proportion to the memory of the process forked: an interpreter that has
 * imported numpy and pandas is about five times larger than a bare one, and one that has also
 * imported scipy, scikit-learn and matplotlib twice that again, and so is everything per
 * request that follows from it (copying page tables, copy-on-write faults, tearing the process
 * down). So the pool keeps one warm interpreter per tier — a prefix of warm_preload's groups,
 * which '|' separates ("numpy | pandas | scipy sklearn ..." gives "", "numpy", "numpy pandas"
 * and all of them; without '|' each module is a group of its own) — and a script goes to the
 * smallest tier that has already imported what it imports. This is only a choice of speed: a
 * script that imports something in a way this scan cannot see (importlib, __import__, exec)
 * still runs, it just imports it itself. */
#include "imports.h"

#include <ctype.h>
#include <stdio.h>
#include <stdbool.h>
#include <string.h>

/* Libraries built on the preloadable ones that no tier names: a script using them wants the
 * largest interpreter. */
static const char *const dependents[] = { "scipy", "sklearn", "matplotlib", "seaborn", "statsmodels", NULL };

static bool is_name_char(char c) { return isalnum((unsigned char)c) || c == '_'; }

static bool is_separator(char c) { return c == ' ' || c == ','; }

/* A walk over a preload list's modules and the group of each. */
struct preload_cursor {
        const char *p;
        bool grouped; /* the list has a '|': groups are what separates them, else each module */
        int group;    /* of the module last returned; -1 before the first */
};

static struct preload_cursor preload_walk(const char *list)
{
        return (struct preload_cursor){ .p = list, .grouped = strchr(list, '|') != NULL, .group = -1 };
}

/* The next module, from c->p on: its start (NULL at the end of the list), with its length in
 * *n and its group in c->group; c->p moves past it. */
static const char *next_module(struct preload_cursor *c, size_t *n)
{
        bool new_group = !c->grouped || c->group < 0;
        while (is_separator(*c->p) || *c->p == '|') {
                new_group |= *c->p == '|';
                c->p++;
        }
        if (!*c->p)
                return NULL;
        if (new_group)
                c->group++;
        const char *start = c->p;
        while (*c->p && !is_separator(*c->p) && *c->p != '|')
                c->p++;
        *n = (size_t)(c->p - start);
        return start;
}

/* The top-level package of a preload entry ("scipy" of "scipy.stats"). */
static size_t top_level_len(const char *w, size_t len)
{
        const char *dot = memchr(w, '.', len);
        return dot ? (size_t)(dot - w) : len;
}

/* 1 + the group of the module top (length n) in the list, or 0 when no group names it. */
static int groups_for(const char *list, const char *top, size_t n)
{
        size_t len;
        struct preload_cursor c = preload_walk(list);
        for (const char *w; (w = next_module(&c, &len));)
                if (top_level_len(w, len) == n && memcmp(w, top, n) == 0)
                        return c.group + 1;
        return 0;
}

int sb_preload_count(const char *preload)
{
        size_t len;
        struct preload_cursor c = preload_walk(preload);
        while (next_module(&c, &len))
                ;
        return c.group + 1;
}

void sb_preload_prefix(const char *preload, int n, char *out, size_t outlen)
{
        size_t len, used = 0;
        const char *w;
        struct preload_cursor c = preload_walk(preload);
        if (outlen)
                out[0] = '\0';
        while ((w = next_module(&c, &len))) {
                if (c.group >= n)
                        return;
                int k = snprintf(out + used, outlen - used, "%s%.*s", used ? " " : "", (int)len, w);
                if (k < 0 || (size_t)k >= outlen - used)
                        return;
                used += (size_t)k;
        }
}

/* Notes the top-level package of the dotted name at *p (and moves past the name). */
static void note_module(const char **p, const char *end, const char *preload, int *need)
{
        const char *s = *p;
        const char *e = s;
        while (e < end && is_name_char(*e))
                e++;
        size_t n = (size_t)(e - s);
        while (e < end && (is_name_char(*e) || *e == '.'))
                e++;
        *p = e;
        if (n == 0)
                return;
        int groups = groups_for(preload, s, n);
        if (groups > *need)
                *need = groups;
        for (int i = 0; dependents[i] && groups == 0; i++)
                if (strlen(dependents[i]) == n && memcmp(dependents[i], s, n) == 0)
                        *need = sb_preload_count(preload);
}

/* The modules of one "import a.b as c, d" statement, from p (just past "import"). */
static const char *scan_import(const char *p, const char *eol, const char *preload, int *need)
{
        for (;;) {
                while (p < eol && (*p == ' ' || *p == '\t' || *p == '('))
                        p++;
                note_module(&p, eol, preload, need);
                while (p < eol && *p != ',' && *p != ';')
                        p++;
                if (p >= eol || *p == ';')
                        return p;
                p++;
        }
}

int sb_preload_needed(const char *script, size_t len, const char *preload)
{
        int need = 0;
        const char *end = script + len;
        /* A UTF-8 byte-order mark may open the script (the runner skips it, as python3 does). */
        if (len >= 3 && memcmp(script, "\xef\xbb\xbf", 3) == 0)
                script += 3;
        for (const char *line = script; line < end;) {
                const char *eol = memchr(line, '\n', (size_t)(end - line));
                if (!eol)
                        eol = end;
                /* A statement may follow ';' on the same line: scan every statement start. */
                for (const char *p = line; p < eol;) {
                        while (p < eol && (*p == ' ' || *p == '\t' || *p == ';'))
                                p++;
                        if (eol - p > 7 && memcmp(p, "import", 6) == 0 && !is_name_char(p[6])) {
                                p = scan_import(p + 6, eol, preload, &need);
                        } else if (eol - p > 5 && memcmp(p, "from", 4) == 0 && !is_name_char(p[4])) {
                                p += 4;
                                while (p < eol && (*p == ' ' || *p == '\t'))
                                        p++;
                                note_module(&p, eol, preload, &need);
                        }
                        while (p < eol && *p != ';')
                                p++;
                }
                line = eol + 1;
        }
        return need;
}

int sb_tier_count(const struct sb_supply *s)
{
        if (!s->warm)
                return 0;
        int n = sb_preload_count(s->warm_preload);
        if (n > SB_MAX_TIERS - 1)
                n = SB_MAX_TIERS - 1;
        return s->warm_tiers ? n + 1 : 1;
}

void sb_tier_preload(const struct sb_supply *s, int tier, char *out, size_t outlen)
{
        sb_preload_prefix(s->warm_preload, s->warm_tiers ? tier : sb_preload_count(s->warm_preload), out, outlen);
}
