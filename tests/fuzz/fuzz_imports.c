/* fuzz_imports.c — the import scanner that picks a warm interpreter from a script's text
 * (any bytes a client posts), and the helpers on the preload list.
 *
 * Input: the preload list up to the first newline (as warm_preload, at most 255 bytes), then
 * the script. Oracles: the answer is between 0 and the list's length, and the prefix helper
 * stays within its buffer and names at most that many modules. */
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
        if (!memchr(prefix, '\0', sizeof(prefix)) || sb_preload_count(prefix) > need)
                abort();
        free(script);
        return 0;
}
