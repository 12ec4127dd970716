/* fuzz_escape.c — jt_append_string(), which turns whatever a script printed (any bytes at
 * all) into a JSON string.
 *
 * Oracles: the output is always one valid JSON string (jt_validate), it is quoted, it holds no
 * raw control character or U+2028/U+2029, and valid UTF-8 without specials comes out as is. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jsontext.h"

static bool plain_utf8(const uint8_t *s, size_t len)
{
        for (size_t i = 0; i < len;) {
                if (s[i] < 0x20 || s[i] == '"' || s[i] == '\\')
                        return false;
                size_t n = jt_utf8_seq_len(s + i, len - i);
                if (n == 0 || (n == 3 && s[i] == 0xE2 && s[i + 1] == 0x80 && (s[i + 2] & 0xFE) == 0xA8))
                        return false;
                i += n;
        }
        return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct sbuf out = { 0 };
        /* Appended after a prefix, as the response writers do. */
        if (sbuf_puts(&out, "{\"stdout\": ") < 0)
                return 0;
        size_t start = out.len;
        if (jt_append_string(&out, data, size) < 0)
                abort();
        const char *s = out.data + start;
        size_t len = out.len - start;
        if (len < 2 || s[0] != '"' || s[len - 1] != '"' || out.data[out.len] != '\0')
                abort();
        if (jt_validate(s, len, 1) != 0)
                abort();
        for (size_t i = 0; i < len; i++)
                if ((unsigned char)s[i] < 0x20)
                        abort();
        if (memmem(s, len, "\xe2\x80\xa8", 3) || memmem(s, len, "\xe2\x80\xa9", 3))
                abort();
        if (plain_utf8(data, size) && (len != size + 2 || memcmp(s + 1, data, size) != 0))
                abort();
        sbuf_free(&out);
        return 0;
}
