/* jsontext.c — escaping arbitrary bytes into JSON strings, and a strict JSON validator.
 * The validator does not build a tree: it only has to decide, in one pass, whether bytes may
 * be copied into a response verbatim. Its memory is bounded by max_depth and by the names of
 * the objects open at any one time (to find a name used twice in one object). */
#include "jsontext.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

size_t jt_utf8_seq_len(const unsigned char *s, size_t len)
{
        if (len == 0)
                return 0;
        unsigned char c = s[0];
        if (c < 0x80)
                return 1;
        size_t n;
        uint32_t cp, min;
        if (c >= 0xC2 && c <= 0xDF) {
                n = 2, cp = c & 0x1F, min = 0x80;
        } else if (c >= 0xE0 && c <= 0xEF) {
                n = 3, cp = c & 0x0F, min = 0x800;
        } else if (c >= 0xF0 && c <= 0xF4) {
                n = 4, cp = c & 0x07, min = 0x10000;
        } else {
                return 0; /* continuation byte, C0/C1 overlong lead, or F5..FF */
        }
        if (len < n)
                return 0;
        for (size_t i = 1; i < n; i++) {
                if ((s[i] & 0xC0) != 0x80)
                        return 0;
                cp = (cp << 6) | (s[i] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
                return 0;
        return n;
}

int jt_append_string(struct sbuf *out, const void *bytes, size_t len)
{
        static const char hex[] = "0123456789abcdef";
        const unsigned char *s = bytes;
        /* Worst case is 6 output bytes per input byte; reserving it up front keeps the loop
         * free of allocation checks. */
        if (len > (SIZE_MAX - 2) / 6)
                return -ENOMEM;
        int r = sbuf_reserve(out, len * 6 + 2);
        if (r < 0)
                return r;
        char *o = out->data + out->len;
        *o++ = '"';
        size_t i = 0;
        while (i < len) {
                unsigned char c = s[i];
                if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
                        *o++ = (char)c;
                        i++;
                        continue;
                }
                if (c < 0x80) {
                        *o++ = '\\';
                        switch (c) {
                        case '"': *o++ = '"'; break;
                        case '\\': *o++ = '\\'; break;
                        case '\n': *o++ = 'n'; break;
                        case '\r': *o++ = 'r'; break;
                        case '\t': *o++ = 't'; break;
                        case '\b': *o++ = 'b'; break;
                        case '\f': *o++ = 'f'; break;
                        default:
                                *o++ = 'u', *o++ = '0', *o++ = '0';
                                *o++ = hex[c >> 4], *o++ = hex[c & 15];
                        }
                        i++;
                        continue;
                }
                size_t n = jt_utf8_seq_len(s + i, len - i);
                if (n == 0) {
                        *o++ = (char)0xEF, *o++ = (char)0xBF, *o++ = (char)0xBD;
                        i++;
                        continue;
                }
                /* U+2028/U+2029 are valid JSON but end lines in JavaScript source. */
                if (n == 3 && c == 0xE2 && s[i + 1] == 0x80 && (s[i + 2] == 0xA8 || s[i + 2] == 0xA9)) {
                        *o++ = '\\', *o++ = 'u', *o++ = '2', *o++ = '0', *o++ = '2';
                        *o++ = s[i + 2] == 0xA8 ? '8' : '9';
                        i += 3;
                        continue;
                }
                for (size_t k = 0; k < n; k++)
                        *o++ = (char)s[i + k];
                i += n;
        }
        *o++ = '"';
        out->len = (size_t)(o - out->data);
        out->data[out->len] = '\0';
        return 0;
}

/* ---- validator ---------------------------------------------------------------------- */

/* The names of the objects open now, innermost last, to find one used twice in an object. */
struct name {
        uint32_t off, len, hash; /* in names.bytes */
};
struct names {
        struct name *v;
        size_t n, cap;
        struct sbuf bytes; /* the names, unescaped: "a" and "\u0061" are the same name */
        size_t *first;     /* per depth: the index in v of the open object's first name */
        bool repeated;     /* a name was used twice: stop tracking, report it at the end */
};

struct scanner {
        const unsigned char *s;
        size_t len, pos;
        struct names names;
};

static void skip_ws(struct scanner *sc)
{
        while (sc->pos < sc->len) {
                unsigned char c = sc->s[sc->pos];
                if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
                        return;
                sc->pos++;
        }
}

/* Four hex digits at s, or -1. */
static long hex_value(const unsigned char *s)
{
        long v = 0;
        for (int i = 0; i < 4; i++) {
                unsigned char c = s[i];
                v <<= 4;
                if (c >= '0' && c <= '9')
                        v |= c - '0';
                else if (c >= 'a' && c <= 'f')
                        v |= c - 'a' + 10;
                else if (c >= 'A' && c <= 'F')
                        v |= c - 'A' + 10;
                else
                        return -1;
        }
        return v;
}

static int hex4(struct scanner *sc, unsigned *out)
{
        if (sc->len - sc->pos < 4)
                return -EINVAL;
        long v = hex_value(sc->s + sc->pos);
        if (v < 0)
                return -EINVAL;
        sc->pos += 4;
        *out = (unsigned)v;
        return 0;
}

/* At the opening quote. */
static int scan_string(struct scanner *sc)
{
        sc->pos++;
        while (sc->pos < sc->len) {
                unsigned char c = sc->s[sc->pos];
                if (c == '"') {
                        sc->pos++;
                        return 0;
                }
                if (c < 0x20)
                        return -EINVAL;
                if (c == '\\') {
                        if (++sc->pos >= sc->len)
                                return -EINVAL;
                        c = sc->s[sc->pos++];
                        if (c == 'u') {
                                unsigned u;
                                if (hex4(sc, &u) < 0)
                                        return -EINVAL;
                                if (u >= 0xDC00 && u <= 0xDFFF)
                                        return -EINVAL; /* low surrogate without a high one */
                                if (u >= 0xD800 && u <= 0xDBFF) {
                                        unsigned lo;
                                        if (sc->len - sc->pos < 6 || sc->s[sc->pos] != '\\' ||
                                            sc->s[sc->pos + 1] != 'u')
                                                return -EINVAL;
                                        sc->pos += 2;
                                        if (hex4(sc, &lo) < 0 || lo < 0xDC00 || lo > 0xDFFF)
                                                return -EINVAL;
                                }
                        } else if (c != '"' && c != '\\' && c != '/' && c != 'b' && c != 'f' &&
                                   c != 'n' && c != 'r' && c != 't') {
                                return -EINVAL;
                        }
                        continue;
                }
                if (c < 0x80) {
                        sc->pos++;
                        continue;
                }
                size_t n = jt_utf8_seq_len(sc->s + sc->pos, sc->len - sc->pos);
                if (n == 0)
                        return -EINVAL;
                sc->pos += n;
        }
        return -EINVAL;
}

static bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

static int scan_digits(struct scanner *sc)
{
        size_t start = sc->pos;
        while (sc->pos < sc->len && is_digit(sc->s[sc->pos]))
                sc->pos++;
        return sc->pos > start ? 0 : -EINVAL;
}

/* The smallest magnitude that a double rounds to infinity, 2^1024 - 2^970 (halfway between
 * DBL_MAX and 2^1024, where rounding to even goes up), as the digits of d.ddd... x 10^308. */
static const char overflow_digits[] =
        "179769313486231580793728971405303415079934132710037826936173778980444968292764750946649017977"
        "587207096330286416692887910946555547851940402630657488671505820681908902000708383676273854845"
        "817711531764475730270069855571366959622842914819860834936475292719074168444365510704342711559"
        "699508093042880177904174497792";

/* Whether the significant digits of a mantissa (from its first non-zero digit, the point
 * skipped) reach overflow_digits, for a number whose leading digit stands for 10^308. */
static bool digits_overflow(const unsigned char *m, const unsigned char *end)
{
        const char *t = overflow_digits;
        for (; m < end; m++) {
                if (*m == '.')
                        continue;
                if (!*t)
                        return true; /* all of the threshold matched, and more digits follow */
                if (*m != (unsigned char)*t)
                        return *m > (unsigned char)*t;
                t++;
        }
        return !*t; /* equal: the halfway point rounds up */
}

/* -ERANGE for a number with a fraction or an exponent beyond a double's range: every JSON
 * parser reads it as a double, so it would arrive as Infinity, which a real result never
 * holds (Python turns float('inf') into null). Integers are exact in Python and pass at any
 * size. s[0..len) is a number the grammar has accepted. */
static int check_number_range(const unsigned char *s, size_t len)
{
        const unsigned char *end = s + len, *p = s + (*s == '-');
        const unsigned char *point = NULL, *lead = NULL;
        for (; p < end && (is_digit(*p) || *p == '.'); p++) {
                if (*p == '.')
                        point = p;
                else if (!lead && *p != '0')
                        lead = p;
        }
        const unsigned char *mant_end = p;
        if (!lead)
                return 0; /* zero, whatever the exponent */
        if (!point)
                point = mant_end;
        /* The power of ten of the leading digit, then the exponent (saturated far beyond any
         * double's, so that a thousand-digit exponent cannot overflow the sum). */
        long long e10 = lead < point ? (point - lead) - 1 : -(lead - point);
        if (p < end) {
                p++;
                bool neg = *p == '-';
                if (*p == '+' || *p == '-')
                        p++;
                long long x = 0;
                for (; p < end; p++)
                        if (x < 100000000000LL)
                                x = x * 10 + (*p - '0');
                e10 += neg ? -x : x;
        }
        if (e10 != 308)
                return e10 > 308 ? -ERANGE : 0;
        return digits_overflow(lead, mant_end) ? -ERANGE : 0;
}

static int scan_number(struct scanner *sc)
{
        size_t start = sc->pos;
        if (sc->s[sc->pos] == '-')
                sc->pos++;
        if (sc->pos >= sc->len)
                return -EINVAL;
        if (sc->s[sc->pos] == '0')
                sc->pos++;
        else if (scan_digits(sc) < 0)
                return -EINVAL;
        bool integer = true;
        if (sc->pos < sc->len && sc->s[sc->pos] == '.') {
                sc->pos++;
                integer = false;
                if (scan_digits(sc) < 0)
                        return -EINVAL;
        }
        if (sc->pos < sc->len && (sc->s[sc->pos] == 'e' || sc->s[sc->pos] == 'E')) {
                sc->pos++;
                integer = false;
                if (sc->pos < sc->len && (sc->s[sc->pos] == '+' || sc->s[sc->pos] == '-'))
                        sc->pos++;
                if (scan_digits(sc) < 0)
                        return -EINVAL;
        }
        return integer ? 0 : check_number_range(sc->s + start, sc->pos - start);
}

static int scan_literal(struct scanner *sc, const char *word)
{
        for (; *word; word++, sc->pos++)
                if (sc->pos >= sc->len || sc->s[sc->pos] != (unsigned char)*word)
                        return -EINVAL;
        return 0;
}

/* Scans one scalar at sc->pos, or returns 1 when it is '[' or '{' (the caller descends). */
static int scan_scalar_or_open(struct scanner *sc)
{
        if (sc->pos >= sc->len)
                return -EINVAL;
        switch (sc->s[sc->pos]) {
        case '{':
        case '[':
                return 1;
        case '"': return scan_string(sc);
        case 't': return scan_literal(sc, "true");
        case 'f': return scan_literal(sc, "false");
        case 'n': return scan_literal(sc, "null");
        default:
                if (sc->s[sc->pos] == '-' || is_digit(sc->s[sc->pos]))
                        return scan_number(sc);
                return -EINVAL;
        }
}

/* ---- names used twice in one object ------------------------------------------------------ */

static size_t utf8_encode(uint32_t cp, unsigned char *o)
{
        if (cp < 0x80) {
                o[0] = (unsigned char)cp;
                return 1;
        }
        if (cp < 0x800) {
                o[0] = (unsigned char)(0xC0 | cp >> 6), o[1] = (unsigned char)(0x80 | (cp & 0x3F));
                return 2;
        }
        if (cp < 0x10000) {
                o[0] = (unsigned char)(0xE0 | cp >> 12), o[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
                o[2] = (unsigned char)(0x80 | (cp & 0x3F));
                return 3;
        }
        o[0] = (unsigned char)(0xF0 | cp >> 18), o[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3F)), o[3] = (unsigned char)(0x80 | (cp & 0x3F));
        return 4;
}

static uint32_t fnv1a(const unsigned char *p, size_t n)
{
        uint32_t h = 2166136261u;
        while (n--)
                h = (h ^ *p++) * 16777619u;
        return h;
}

/* Adds the name s[0..len) (a string's contents, already validated) to the open object's,
 * unescaped: an escape never decodes to more bytes than it takes. 0 or -ENOMEM. */
static int name_add(struct names *nm, const unsigned char *s, size_t len)
{
        if (nm->repeated)
                return 0;
        if (nm->n == nm->cap) {
                size_t cap = nm->cap ? nm->cap * 2 : 64;
                struct name *v = reallocarray(nm->v, cap, sizeof(*v));
                if (!v)
                        return -ENOMEM;
                nm->v = v, nm->cap = cap;
        }
        size_t off = nm->bytes.len;
        if (sbuf_reserve(&nm->bytes, len) < 0)
                return -ENOMEM;
        unsigned char *start = (unsigned char *)nm->bytes.data + off, *o = start;
        for (size_t i = 0; i < len;) {
                if (s[i] != '\\') {
                        *o++ = s[i++];
                        continue;
                }
                unsigned char c = s[i + 1];
                i += 2;
                if (c != 'u') {
                        *o++ = c == 'b' ? '\b' : c == 'f' ? '\f' : c == 'n' ? '\n' : c == 'r' ? '\r' : c == 't' ? '\t' : c;
                        continue;
                }
                uint32_t cp = (uint32_t)hex_value(s + i);
                i += 4;
                if (cp >= 0xD800 && cp <= 0xDBFF) { /* its low half follows (scan_string checked) */
                        cp = 0x10000 + ((cp - 0xD800) << 10) + ((uint32_t)hex_value(s + i + 2) - 0xDC00);
                        i += 6;
                }
                o += utf8_encode(cp, o);
        }
        size_t n = (size_t)(o - start);
        nm->bytes.len = off + n;
        nm->v[nm->n++] = (struct name){ (uint32_t)off, (uint32_t)n, fnv1a(start, n) };
        return 0;
}

static bool same_name(const struct name *x, const struct name *y, const char *bytes)
{
        return x->hash == y->hash && x->len == y->len && memcmp(bytes + x->off, bytes + y->off, x->len) == 0;
}

/* Whether two of the k names at v are the same: pairwise for the few names of most objects,
 * else through an open-addressing table, so that an object of a million names costs O(n).
 * 1, 0, or -ENOMEM. */
static int has_repeat(const struct name *v, size_t k, const char *bytes)
{
        if (k <= 16) {
                for (size_t i = 1; i < k; i++)
                        for (size_t j = 0; j < i; j++)
                                if (same_name(&v[i], &v[j], bytes))
                                        return 1;
                return 0;
        }
        size_t cap = 64;
        while (cap < 2 * k)
                cap <<= 1;
        cleanup_free uint32_t *slot = calloc(cap, sizeof(*slot)); /* index + 1; 0 is empty */
        if (!slot)
                return -ENOMEM;
        for (size_t i = 0; i < k; i++) {
                size_t h = v[i].hash & (cap - 1);
                for (; slot[h]; h = (h + 1) & (cap - 1))
                        if (same_name(&v[slot[h] - 1], &v[i], bytes))
                                return 1;
                slot[h] = (uint32_t)i + 1;
        }
        return 0;
}

/* The object whose names start at v[first] closes: were any two the same? Then forget them.
 * 0 or -ENOMEM. */
static int names_close(struct names *nm, size_t first)
{
        if (nm->repeated || nm->n <= first)
                return 0;
        int r = has_repeat(nm->v + first, nm->n - first, nm->bytes.data);
        if (r < 0)
                return r;
        nm->repeated = r;
        nm->bytes.len = nm->v[first].off; /* its first name's bytes start its share */
        nm->n = first;
        return 0;
}

/* ---- the document ------------------------------------------------------------------------ */

/* An object member's "key": and the whitespace after it; the name is remembered. */
static int scan_key(struct scanner *sc)
{
        size_t start = sc->pos;
        if (sc->pos >= sc->len || sc->s[sc->pos] != '"' || scan_string(sc) < 0)
                return -EINVAL;
        if (name_add(&sc->names, sc->s + start + 1, sc->pos - start - 2) < 0)
                return -ENOMEM;
        skip_ws(sc);
        if (sc->pos >= sc->len || sc->s[sc->pos++] != ':')
                return -EINVAL;
        skip_ws(sc);
        return 0;
}

/* The value at sc->pos and nothing after it. stack holds '[' or '{' per open container. */
static int scan_document(struct scanner *sc, char *stack, unsigned max_depth)
{
        unsigned depth = 0;
        int r;
        skip_ws(sc);
        for (;;) {
                /* Expect a value (in an object, preceded by "key":). */
                r = scan_scalar_or_open(sc);
                if (r < 0)
                        return r;
                if (r == 1) {
                        if (depth >= max_depth)
                                return -EINVAL;
                        char open = (char)sc->s[sc->pos++];
                        sc->names.first[depth] = sc->names.n;
                        stack[depth++] = open;
                        skip_ws(sc);
                        char close = open == '[' ? ']' : '}';
                        if (sc->pos < sc->len && sc->s[sc->pos] == close) {
                                sc->pos++;
                                depth--;
                        } else {
                                if (open == '{' && (r = scan_key(sc)) < 0)
                                        return r;
                                continue;
                        }
                }
                /* After a complete value: close containers or move to the next member. */
                for (;;) {
                        skip_ws(sc);
                        if (depth == 0)
                                return sc->pos == sc->len ? 0 : -EINVAL;
                        if (sc->pos >= sc->len)
                                return -EINVAL;
                        char open = stack[depth - 1];
                        unsigned char c = sc->s[sc->pos++];
                        if (c == (open == '[' ? ']' : '}')) {
                                if (open == '{' && (r = names_close(&sc->names, sc->names.first[depth - 1])) < 0)
                                        return r;
                                depth--;
                                continue;
                        }
                        if (c != ',')
                                return -EINVAL;
                        skip_ws(sc);
                        if (open == '{' && (r = scan_key(sc)) < 0)
                                return r;
                        break;
                }
        }
}

int jt_validate(const char *text, size_t len, unsigned max_depth)
{
        if (len > UINT32_MAX)
                return -E2BIG; /* names are kept with 32-bit offsets */
        struct scanner sc = { .s = (const unsigned char *)text, .len = len };
        cleanup_free char *stack = malloc(max_depth + 1);
        sc.names.first = calloc(max_depth + 1, sizeof(*sc.names.first));
        int r = stack && sc.names.first ? scan_document(&sc, stack, max_depth) : -ENOMEM;
        if (r == 0 && sc.names.repeated)
                r = -EEXIST;
        free(sc.names.first);
        free(sc.names.v);
        sbuf_free(&sc.names.bytes);
        return r;
}
