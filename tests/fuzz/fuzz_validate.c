/* fuzz_validate.c — jt_validate(), the gate that decides whether bytes a script sent on the
 * result channel may be copied into a response verbatim.
 *
 * Oracles: the verdict does not depend on what follows the input in memory (the input is
 * copied to an exact-size buffer, so ASan sees any read past it); a valid value stays valid
 * with whitespace around it and at a larger depth limit, and becomes invalid when doubled. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jsontext.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (size < 1)
                return 0;
        /* First byte: the depth limit, so that shallow limits are exercised as well. */
        unsigned depth = data[0] % 8;
        const char *text = (const char *)data + 1;
        size_t len = size - 1;
        char *exact = malloc(len ? len : 1);
        if (!exact)
                return 0;
        memcpy(exact, text, len);
        int r = jt_validate(exact, len, depth);
        /* Not JSON, a name twice in one object, a number past a double: nothing else. */
        if (r != 0 && r != -EINVAL && r != -EEXIST && r != -ERANGE)
                abort();
        if (r == 0) {
                if (jt_validate(exact, len, depth + 1) != 0)
                        abort();
                char *wrapped = malloc(2 * len + 3);
                if (!wrapped)
                        abort();
                wrapped[0] = ' ';
                memcpy(wrapped + 1, exact, len);
                wrapped[len + 1] = '\n';
                if (jt_validate(wrapped, len + 2, depth) != 0)
                        abort();
                /* Two values side by side are never one value ("1" "1" is "11" only
                 * without a separator, so put one in). */
                memcpy(wrapped + len + 2, exact, len);
                if (jt_validate(wrapped, 2 * len + 2, depth) == 0)
                        abort();
                free(wrapped);
        }
        free(exact);
        return 0;
}
