/* fuzz_keys.c — keys_parse() on any file, and keys_bearer()/keys_match() on any header value.
 *
 * Oracles: a file that parses holds at most KEYS_MAX keys, each with a valid id, limits in
 * their ranges, and no id or digest twice; one that does not says why, naming the file and
 * line, in a NUL-terminated message; the same text with every line commented out parses to no
 * keys at all; and a secret taken from the input matches at most a key that exists. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../fcgi/keys.h"
#include "fuzz_text.h"

static const struct key_limits defaults = { .rps = 5, .burst = 10, .concurrency = 2 };

static void check_set(const struct key_set *set)
{
        if (set->count > KEYS_MAX)
                abort();
        for (unsigned i = 0; i < set->count; i++) {
                const struct api_key *k = &set->keys[i];
                if (!memchr(k->id, '\0', sizeof(k->id)) || !keys_id_valid(k->id, strlen(k->id)))
                        abort();
                if (k->limits.rps > KEY_RPS_MAX || k->limits.burst > KEY_BURST_MAX ||
                    k->limits.concurrency > KEY_CONCURRENCY_MAX)
                        abort();
                for (unsigned j = 0; j < i; j++)
                        if (strcmp(set->keys[j].id, k->id) == 0 || memcmp(set->keys[j].digest, k->digest, KEY_DIGEST_LEN) == 0)
                                abort();
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static struct key_set set;
        char err[256];
        memset(err, 'x', sizeof(err));
        int r = keys_parse((const char *)data, size, "f", &defaults, &set, err, sizeof(err));
        if (r == 0)
                check_set(&set);
        else if (!memchr(err, '\0', sizeof(err)) || strncmp(err, "f:", 2) != 0)
                abort();

        /* The input's first line as an Authorization value, against the set (or none). */
        if (r != 0)
                set.count = 0;
        char header[KEY_SECRET_MAX + 64];
        size_t n = 0;
        while (n < size && n < sizeof(header) - 1 && data[n] != '\n' && data[n] != '\0') {
                header[n] = (char)data[n];
                n++;
        }
        header[n] = '\0';
        const char *secret;
        size_t len;
        if (keys_bearer(header, &secret, &len) == 0) {
                if (len == 0 || len > KEY_SECRET_MAX || secret < header || secret + len > header + n)
                        abort();
                int i = keys_match(&set, secret, len);
                if (i < -1 || i >= (int)set.count)
                        abort();
        }

        size_t clen;
        char *c = commented(data, size, &clen);
        r = keys_parse(c, clen, "f", &defaults, &set, err, sizeof(err));
        /* A NUL byte may be refused; anything else commented out is no keys. */
        if (r == 0 ? set.count != 0 : !memchr(data, '\0', size))
                abort();
        free(c);
        return 0;
}
