/* fuzz_imports.c — the import scanner that picks a warm interpreter from a script's text
 * (any bytes a client posts), and the helpers on the preload list.
 *
 * Input: the preload list up to the first newline (as warm_preload, at most 255 bytes), then
 * the script. Oracles: the answer is between 0 and the list's number of groups ('|'-separated;
 * without '|' each module is one), and the prefix helper stays within its buffer and names
 * none of the list's modules for 0 groups, at most `need` without '|', and never more than
 * the list has. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "imports.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        const uint8_t *nl = memchr(data, '\n', size < 256 ? size : 256);
        if (!nl)
                return 0;
        size_t plen = (size_t)(nl - data);
        char preload[256];
        memcpy(preload, data, plen);
        preload[plen] = '\0';
        size_t len = size - plen - 1;
        char *script = malloc(len ? len : 1); /* exact size: ASan sees any read past the end */
        if (!script)
                return 0;
        memcpy(script, nl + 1, len);

        int count = sb_preload_count(preload);
        int need = sb_preload_needed(script, len, preload);
        if (need < 0 || need > count)
                abort();
        char prefix[64];
        sb_preload_prefix(preload, need, prefix, sizeof(prefix));
        if (!memchr(prefix, '\0', sizeof(prefix)))
                abort();
        char flat[256]; /* the list's modules, every one a group of its own */
        memcpy(flat, preload, plen + 1);
        for (char *bar = strchr(flat, '|'); bar; bar = strchr(bar, '|'))
                *bar = ' ';
        int named = sb_preload_count(prefix);
        if (named > sb_preload_count(flat) || (need == 0 && named != 0) || (!strchr(preload, '|') && named > need))
                abort();
        free(script);
        return 0;
}
