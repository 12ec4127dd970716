/* imports.h — choosing the warm interpreter for a script from what it imports. */
#ifndef PYEXEC_IMPORTS_H
#define PYEXEC_IMPORTS_H

#include <stddef.h>

/* How many of the space-separated preload modules (a prefix of the list) an interpreter must
 * have imported for this script: 0 when it imports none of them, the whole list when it
 * imports the last one or a library built on them (scipy, sklearn, matplotlib, seaborn). */
int sb_preload_needed(const char *script, size_t len, const char *preload);

/* How many modules the space-separated list names. */
int sb_preload_count(const char *preload);

/* The first n modules of the list (all of them when n exceeds its length), space-separated,
 * into out (truncated to outlen). */
void sb_preload_prefix(const char *preload, int n, char *out, size_t outlen);

#endif
