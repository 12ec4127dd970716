/* keys.h — API keys: the keys file's parser, and which key a request's secret is.
 *
 * The file (config's api_keys_file) has one key per line:
 *
 *     <key-id> <sha256-hex-of-the-secret> [rps=N] [burst=N] [concurrency=N]
 *
 * with '#' comments and blank lines. Only the secret's SHA-256 is stored; the secret itself
 * is shown once, by `pyexec-keys new`. The id names the key wherever one must be named (the
 * log, /metrics, nginx's limit zones), so it is restricted to characters that are safe in all
 * of them. Pure code: no I/O but keys_load()'s read of the file, nothing logged. */
#ifndef PYEXEC_KEYS_H
#define PYEXEC_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KEYS_MAX 1024        /* keys in one file */
#define KEY_ID_MAX 64        /* bytes of an id */
#define KEY_DIGEST_LEN 32    /* SHA-256 */
#define KEY_SECRET_MAX 256   /* bytes of a presented secret; longer is refused unhashed */
#define KEYS_FILE_MAX (1u << 20)
#define KEY_RPS_MAX 100000
#define KEY_BURST_MAX 100000
#define KEY_CONCURRENCY_MAX 10000

/* Per key; 0 for rps or concurrency means no limit of that kind (the pool's own still holds). */
struct key_limits {
        unsigned rps;         /* requests per second, sustained */
        unsigned burst;       /* requests beyond the rate accepted at once */
        unsigned concurrency; /* scripts in flight */
};

struct api_key {
        char id[KEY_ID_MAX + 1];
        uint8_t digest[KEY_DIGEST_LEN];
        struct key_limits limits;
};

/* A whole file, parsed. Fixed size, so that it can be copied into shared memory as is. */
struct key_set {
        unsigned count;
        struct api_key keys[KEYS_MAX];
};

/* Whether id[0..len) is a valid key id: 1 to KEY_ID_MAX of [A-Za-z0-9_.-], starting with a
 * letter or digit. */
bool keys_id_valid(const char *id, size_t len);

/* Parses text[0..len) (name: the file's name, for messages) into *out, limits that a line does
 * not name taken from *defaults. 0, or -EINVAL with err saying which line and why: a bad id, a
 * digest that is not 64 hex digits, an unknown or repeated option, a value out of range, a
 * duplicate id or secret, a NUL byte, more than KEYS_MAX keys. *out is undefined on failure. */
int keys_parse(const char *text, size_t len, const char *name, const struct key_limits *defaults,
               struct key_set *out, char *err, size_t errlen);

/* keys_parse() of the file at path (at most KEYS_FILE_MAX bytes). 0 or -errno, err set. */
int keys_load(const char *path, const struct key_limits *defaults, struct key_set *out, char *err,
              size_t errlen);

/* The secret of an "Authorization: Bearer <secret>" header value: 0 with *secret, *len; -1 when
 * the value is missing, of another scheme, empty or longer than KEY_SECRET_MAX. */
int keys_bearer(const char *authorization, const char **secret, size_t *len);

/* The index of the key whose digest is SHA-256(secret), or -1. Takes the same time whichever
 * key matches, or none: every key's digest is compared in full, without branching on bytes. */
int keys_match(const struct key_set *set, const char *secret, size_t len);

/* digest = SHA-256(data). */
void keys_digest(const void *data, size_t len, uint8_t digest[KEY_DIGEST_LEN]);

/* A new secret ("pyx_" and 43 base64url characters: 256 random bits) in secret[], which has
 * room for KEY_SECRET_MAX + 1 bytes. 0 or -errno (no randomness). */
int keys_new_secret(char *secret, size_t size);

/* The keys file's line for id and secret, with the given options text ("" for none). */
int keys_format_line(const char *id, const char *secret, const char *options, char *line, size_t size);

#endif
