/* keys.c — the keys file's parser and the constant-time match of a presented secret (keys.h). */
#define _GNU_SOURCE
#include "keys.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <unistd.h>

#include "util.h"

bool keys_id_valid(const char *id, size_t len)
{
        static const char allowed[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-";
        if (len == 0 || len > KEY_ID_MAX || !memchr(allowed, id[0], 62))
                return false;
        for (size_t i = 0; i < len; i++)
                if (id[i] == '\0' || !memchr(allowed, id[i], sizeof(allowed) - 1))
                        return false;
        return true;
}

/* ---- one line ------------------------------------------------------------------------- */

static int hex_value(char c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

static bool parse_digest(const char *hex, size_t len, uint8_t digest[KEY_DIGEST_LEN])
{
        if (len != 2 * KEY_DIGEST_LEN)
                return false;
        for (size_t i = 0; i < KEY_DIGEST_LEN; i++) {
                int hi = hex_value(hex[2 * i]), lo = hex_value(hex[2 * i + 1]);
                if (hi < 0 || lo < 0)
                        return false;
                digest[i] = (uint8_t)(hi << 4 | lo);
        }
        return true;
}

/* "name=N" for one of the three options; a repeated one is refused (which would win?). */
static int parse_option(const char *word, size_t len, struct key_limits *l, unsigned *seen, char *msg, size_t msglen)
{
        static const struct {
                const char *name;
                size_t offset;
                unsigned max;
        } options[] = {
                { "rps", offsetof(struct key_limits, rps), KEY_RPS_MAX },
                { "burst", offsetof(struct key_limits, burst), KEY_BURST_MAX },
                { "concurrency", offsetof(struct key_limits, concurrency), KEY_CONCURRENCY_MAX },
        };
        const char *eq = memchr(word, '=', len);
        size_t nlen = eq ? (size_t)(eq - word) : len;
        for (unsigned i = 0; i < sizeof(options) / sizeof(options[0]); i++) {
                if (strlen(options[i].name) != nlen || memcmp(options[i].name, word, nlen) != 0)
                        continue;
                if (*seen & (1u << i)) {
                        snprintf(msg, msglen, "'%s' given twice", options[i].name);
                        return -EINVAL;
                }
                *seen |= 1u << i;
                const char *v = eq ? eq + 1 : NULL;
                size_t vlen = v ? len - nlen - 1 : 0;
                unsigned long long n = 0;
                bool ok = vlen > 0 && vlen <= 9;
                for (size_t k = 0; ok && k < vlen; k++) {
                        ok = v[k] >= '0' && v[k] <= '9';
                        n = n * 10 + (unsigned)(v[k] - '0');
                }
                if (!ok || n > options[i].max) {
                        snprintf(msg, msglen, "%s: '%.*s' is not a whole number from 0 to %u", options[i].name,
                                 (int)(vlen > 20 ? 20 : vlen), v ? v : "", options[i].max);
                        return -EINVAL;
                }
                *(unsigned *)((char *)l + options[i].offset) = (unsigned)n;
                return 0;
        }
        snprintf(msg, msglen, "unknown option '%.*s' (rps=N, burst=N, concurrency=N)", (int)(nlen > 40 ? 40 : nlen),
                 word);
        return -EINVAL;
}

/* The next word of s[*at..len) (separated by spaces or tabs): its start and length, or false. */
static bool next_word(const char *s, size_t len, size_t *at, const char **word, size_t *wlen)
{
        while (*at < len && (s[*at] == ' ' || s[*at] == '\t'))
                (*at)++;
        if (*at >= len)
                return false;
        size_t start = *at;
        while (*at < len && s[*at] != ' ' && s[*at] != '\t')
                (*at)++;
        *word = s + start;
        *wlen = *at - start;
        return true;
}

/* One line without its newline or comment: nothing (blank), or a key into *k (1). */
static int parse_line(const char *s, size_t len, const struct key_limits *defaults, struct api_key *k, char *msg,
                      size_t msglen)
{
        size_t at = 0, wlen;
        const char *word;
        if (!next_word(s, len, &at, &word, &wlen))
                return 0;
        if (!keys_id_valid(word, wlen)) {
                snprintf(msg, msglen, "'%.*s' is not a key id (1 to %d of A-Z a-z 0-9 _ . -, starting with a letter "
                         "or digit)", (int)(wlen > KEY_ID_MAX ? KEY_ID_MAX : wlen), word, KEY_ID_MAX);
                return -EINVAL;
        }
        *k = (struct api_key){ .limits = *defaults };
        memcpy(k->id, word, wlen);
        if (!next_word(s, len, &at, &word, &wlen) || !parse_digest(word, wlen, k->digest)) {
                snprintf(msg, msglen, "key '%s': expected the secret's SHA-256 as 64 hex digits after the id", k->id);
                return -EINVAL;
        }
        unsigned seen = 0;
        while (next_word(s, len, &at, &word, &wlen)) {
                char why[160];
                if (parse_option(word, wlen, &k->limits, &seen, why, sizeof(why)) < 0) {
                        snprintf(msg, msglen, "key '%s': %s", k->id, why);
                        return -EINVAL;
                }
        }
        return 1;
}

/* A key that repeats an earlier one's id or secret: its index, or -1. */
static int duplicate_of(const struct key_set *set, const struct api_key *k, bool *same_id)
{
        for (unsigned i = 0; i < set->count; i++) {
                *same_id = strcmp(set->keys[i].id, k->id) == 0;
                if (*same_id || memcmp(set->keys[i].digest, k->digest, KEY_DIGEST_LEN) == 0)
                        return (int)i;
        }
        return -1;
}

/* ---- the file ------------------------------------------------------------------------- */

static int add_line(const char *s, size_t len, const struct key_limits *defaults, struct key_set *out, char *msg,
                    size_t msglen)
{
        const char *hash = memchr(s, '#', len);
        if (hash)
                len = (size_t)(hash - s);
        if (len && s[len - 1] == '\r')
                len--;
        struct api_key k;
        int r = parse_line(s, len, defaults, &k, msg, msglen);
        if (r <= 0)
                return r;
        bool same_id;
        int dup = duplicate_of(out, &k, &same_id);
        if (dup >= 0) {
                snprintf(msg, msglen, same_id ? "key '%s': the id is used twice" : "key '%s': the same secret as key '%s'",
                         k.id, out->keys[dup].id);
                return -EINVAL;
        }
        if (out->count == KEYS_MAX) {
                snprintf(msg, msglen, "more than %d keys", KEYS_MAX);
                return -EINVAL;
        }
        out->keys[out->count++] = k;
        return 0;
}

int keys_parse(const char *text, size_t len, const char *name, const struct key_limits *defaults,
               struct key_set *out, char *err, size_t errlen)
{
        out->count = 0;
        size_t at = 0;
        for (unsigned lineno = 1; at < len; lineno++) {
                const char *nl = memchr(text + at, '\n', len - at);
                size_t end = nl ? (size_t)(nl - text) : len;
                char msg[300];
                int r = 0;
                if (memchr(text + at, '\0', end - at)) {
                        snprintf(msg, sizeof(msg), "a NUL byte");
                        r = -EINVAL;
                } else {
                        r = add_line(text + at, end - at, defaults, out, msg, sizeof(msg));
                }
                if (r < 0) {
                        snprintf(err, errlen, "%s:%u: %s", name, lineno, msg);
                        return r;
                }
                at = end + 1;
        }
        return 0;
}

int keys_load(const char *path, const struct key_limits *defaults, struct key_set *out, char *err, size_t errlen)
{
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
                int e = errno;
                snprintf(err, errlen, "%s: %s", path, strerror(e));
                return -e;
        }
        char *text = malloc(KEYS_FILE_MAX + 1);
        ssize_t n = text ? read_all(fd, text, KEYS_FILE_MAX + 1) : -ENOMEM;
        (void)close(fd);
        int r;
        if (n < 0) {
                snprintf(err, errlen, "%s: %s", path, strerror((int)-n));
                r = (int)n;
        } else if ((size_t)n > KEYS_FILE_MAX) {
                snprintf(err, errlen, "%s: larger than %u bytes", path, KEYS_FILE_MAX);
                r = -EFBIG;
        } else {
                r = keys_parse(text, (size_t)n, path, defaults, out, err, errlen);
        }
        free(text);
        return r;
}

/* ---- a presented secret --------------------------------------------------------------- */

int keys_bearer(const char *authorization, const char **secret, size_t *len)
{
        if (!authorization || strncasecmp(authorization, "Bearer ", 7) != 0)
                return -1;
        const char *s = authorization + 7;
        while (*s == ' ')
                s++;
        size_t n = strlen(s);
        while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
                n--;
        if (n == 0 || n > KEY_SECRET_MAX)
                return -1;
        *secret = s;
        *len = n;
        return 0;
}

void keys_digest(const void *data, size_t len, uint8_t digest[KEY_DIGEST_LEN])
{
        SHA256(data, len, digest);
}

int keys_match(const struct key_set *set, const char *secret, size_t len)
{
        uint8_t d[KEY_DIGEST_LEN];
        keys_digest(secret, len, d);
        /* Every digest in full, and the answer chosen by masks: neither where the first
         * differing byte is nor which key matched changes what is executed. Digests, not
         * secrets, are compared, so even the secret's length is not compared. */
        unsigned found = 0, index = 0;
        /* Bounded here too: the monitor reads a set the master may be rewriting (auth.c). */
        unsigned n = set->count < KEYS_MAX ? set->count : KEYS_MAX;
        for (unsigned i = 0; i < n; i++) {
                unsigned diff = 0;
                for (unsigned b = 0; b < KEY_DIGEST_LEN; b++)
                        diff |= (unsigned)(set->keys[i].digest[b] ^ d[b]);
                unsigned hit = (unsigned)((diff - 1) >> 31) & 1u; /* 1 when diff == 0 (diff < 256) */
                unsigned mask = 0u - hit;
                index = (index & ~mask) | (i & mask);
                found |= hit;
        }
        return found ? (int)index : -1;
}

int keys_new_secret(char *secret, size_t size)
{
        static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        uint8_t raw[33]; /* 256 bits, and one byte of padding so that 3-byte groups divide it */
        if (size < 4 + 44 + 1)
                return -ENOSPC;
        size_t got = 0;
        while (got < 32) {
                ssize_t n = getrandom(raw + got, 32 - got, 0);
                if (n < 0 && errno != EINTR)
                        return -errno;
                got += n > 0 ? (size_t)n : 0;
        }
        raw[32] = 0;
        size_t o = 0;
        memcpy(secret, "pyx_", 4);
        o = 4;
        for (size_t i = 0; i < 33; i += 3) {
                uint32_t v = (uint32_t)raw[i] << 16 | (uint32_t)raw[i + 1] << 8 | raw[i + 2];
                for (int k = 3; k >= 0; k--)
                        secret[o++] = b64url[(v >> (6 * k)) & 63];
        }
        o--; /* 44 characters carry 264 bits; the last one only padding: 43 carry the 256 */
        secret[o] = '\0';
        explicit_bzero(raw, sizeof(raw));
        return 0;
}

int keys_format_line(const char *id, const char *secret, const char *options, char *line, size_t size)
{
        uint8_t d[KEY_DIGEST_LEN];
        keys_digest(secret, strlen(secret), d);
        char hex[2 * KEY_DIGEST_LEN + 1];
        for (int i = 0; i < KEY_DIGEST_LEN; i++)
                snprintf(hex + 2 * i, 3, "%02x", d[i]);
        int n = snprintf(line, size, "%s %s%s%s", id, hex, options[0] ? " " : "", options);
        return n < 0 || (size_t)n >= size ? -ENOSPC : 0;
}
