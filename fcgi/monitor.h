/* monitor.h — the process that answers /health, /healthz and /metrics (monitor.c). */
#ifndef PYEXEC_MONITOR_H
#define PYEXEC_MONITOR_H

#include "stats.h"

/* Serves FastCGI requests on listen_fd from the shared counters (which it only reads, but for
 * the answers of auth.h it counts); never returns. */
void monitor_main(int listen_fd, struct pool_stats *stats) __attribute__((noreturn));

#endif
