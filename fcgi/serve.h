/* serve.h — a worker of the pool (serve.c). */
#ifndef PYEXEC_SERVE_H
#define PYEXEC_SERVE_H

#include "sandbox.h"
#include "stats.h"

/* Serves requests from the FastCGI socket on fd 0 until SIGTERM; never returns. slot is this
 * worker's entry in stats->slots (and its sandboxes' host ids). warm_first: a worker of a new
 * generation, which takes requests only once its interpreters are ready (or after 10 s), while
 * the old generation still serves. */
void serve_main(const struct sb_config *config, struct pool_stats *stats, int slot, const struct sb_hub *hub,
                bool warm_first)
        __attribute__((noreturn));

#endif
