/* imports.c — which warm interpreter a script needs, judged from its import statements.
 *
 * A fork costs in proportion to the memory of the process forked: an interpreter that has
 * imported numpy and pandas is about five times larger than a bare one, and so is everything
 * per request that follows from it (copying page tables, copy-on-write faults, tearing the
 * process down). So each worker keeps one warm interpreter per prefix of warm_preload ("",
 * "numpy", "numpy pandas"), and a script goes to the smallest one that has already imported
 * what it imports. This is only a choice of speed: a script that imports something in a way
 * this scan cannot see (importlib, __import__, exec) still runs, it just imports it itself. */
#include "imports.h"

#include <ctype.h>
#include <stdio.h>
#include <stdbool.h>
#include <string.h>

/* Libraries built on the preloadable ones: a script using them wants the largest interpreter. */
static const char *const dependents[] = { "scipy", "sklearn", "matplotlib", "seaborn", "statsmodels", NULL };

static bool is_name_char(char c) { return isalnum((unsigned char)c) || c == '_'; }

/* The next word of a space- or comma-separated list, from *p on: its start (NULL at the end
 * of the list), with its length in *n; *p moves past it. */
static const char *next_word(const char **p, size_t *n)
{
        while (**p == ' ' || **p == ',')
                (*p)++;
        if (!**p)
                return NULL;
        const char *start = *p;
        while (**p && **p != ' ' && **p != ',')
                (*p)++;
        *n = (size_t)(*p - start);
        return start;
}

/* The index of the word top (length n) in the list, or -1. */
static int list_index(const char *list, const char *top, size_t n)
{
        size_t len;
        int i = 0;
        for (const char *p = list, *w; (w = next_word(&p, &len)); i++)
                if (len == n && memcmp(w, top, n) == 0)
                        return i;
        return -1;
}

int sb_preload_count(const char *preload)
{
        size_t len;
        int i = 0;
        for (const char *p = preload; next_word(&p, &len); i++)
                ;
        return i;
}

void sb_preload_prefix(const char *preload, int n, char *out, size_t outlen)
{
        size_t len, used = 0;
        const char *w;
        int i = 0;
        if (outlen)
                out[0] = '\0';
        for (const char *p = preload; i < n && (w = next_word(&p, &len)); i++) {
                int k = snprintf(out + used, outlen - used, "%s%.*s", i ? " " : "", (int)len, w);
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
        int idx = list_index(preload, s, n);
        if (idx >= 0 && idx + 1 > *need)
                *need = idx + 1;
        for (int i = 0; dependents[i]; i++)
                if (strlen(dependents[i]) == n && memcmp(dependents[i], s, n) == 0)
                        *need = sb_preload_count(preload);
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
                                p += 6;
                                for (;;) { /* import a.b as c, d */
                                        while (p < eol && (*p == ' ' || *p == '\t' || *p == '('))
                                                p++;
                                        note_module(&p, eol, preload, &need);
                                        while (p < eol && *p != ',' && *p != ';')
                                                p++;
                                        if (p >= eol || *p == ';')
                                                break;
                                        p++;
                                }
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
