/* serve.h — a worker of the pool (serve.c). */
#ifndef PYEXEC_SERVE_H
#define PYEXEC_SERVE_H

#include "config.h"
#include "stats.h"

/* Serves requests from the FastCGI socket on fd 0 until SIGTERM; never returns. slot is this
 * worker's entry in stats->slots; zygote the path of pyexec-zygote. */
void serve_main(const struct sb_limits *limits, struct pool_stats *stats, int slot, const char *zygote)
        __attribute__((noreturn));

#endif
