/* fuzz_text.h — what the line-oriented parsers' harnesses (fuzz_config.c, fuzz_keys.c) do to
 * their input. */
#ifndef PYEXEC_FUZZ_TEXT_H
#define PYEXEC_FUZZ_TEXT_H

#include <stdint.h>
#include <stdlib.h>

/* The text with '#' put in front of every line: a file of comments only. The caller frees it. */
static inline char *commented(const uint8_t *data, size_t size, size_t *len)
{
        char *out = malloc(2 * size + 1);
        if (!out)
                abort();
        size_t n = 0;
        out[n++] = '#';
        for (size_t i = 0; i < size; i++) {
                out[n++] = (char)data[i];
                if (data[i] == '\n' && i + 1 < size)
                        out[n++] = '#';
        }
        *len = n;
        return out;
}

#endif
