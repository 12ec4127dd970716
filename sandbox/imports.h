/* imports.h — choosing the warm interpreter for a script from what it imports. */
#ifndef PYEXEC_IMPORTS_H
#define PYEXEC_IMPORTS_H

#include <stddef.h>

#include "sandbox.h"

#define SB_MAX_TIERS 8

/* A preload list is module names separated by spaces (or commas), in groups separated by '|';
 * without '|', each module is a group of its own. A tier is a prefix of the groups.
 *
 * How many groups (a prefix of the list) an interpreter must have imported for this script:
 * 0 when it imports none of their modules, all of them when it imports one of the last group or
 * a library built on them that no group names (scipy, sklearn, matplotlib, seaborn). A dotted
 * entry ("scipy.stats") counts for its top-level package. */
int sb_preload_needed(const char *script, size_t len, const char *preload);

/* How many groups the list has. */
int sb_preload_count(const char *preload);

/* The modules of the first n groups (all of them when n exceeds their number), space-separated,
 * into out (truncated to outlen). */
void sb_preload_prefix(const char *preload, int n, char *out, size_t outlen);

/* How many warm interpreters the supply asks for: 0 when cold; with warm_tiers, one per prefix
 * of warm_preload's groups, the empty one included (at most SB_MAX_TIERS); else 1. */
int sb_tier_count(const struct sb_supply *s);

/* The modules tier (0 .. sb_tier_count()-1) preloads, space-separated, into out. */
void sb_tier_preload(const struct sb_supply *s, int tier, char *out, size_t outlen);

#endif
