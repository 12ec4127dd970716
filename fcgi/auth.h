/* auth.h — the authenticator: nginx asks it which key a request carries before it reads the
 * request's body (auth_request), and has it answer the requests its limits refuse.
 *
 * Both run in the monitor (monitor.c), on the key set the master publishes in the shared
 * counters (stats.h) at start and at each reload: nginx's limit_req/limit_conn, keyed by the
 * id this returns, do the counting (nginx/nginx.conf.in, and the zones `pyexec-keys nginx`
 * writes). */
#ifndef PYEXEC_AUTH_H
#define PYEXEC_AUTH_H

#include <fcgiapp.h>
#include <stdbool.h>

#include "keys.h"
#include "stats.h"

/* The keys file the config names, parsed with the config's defaults: 0 with *out (NULL when
 * the config names none; the caller frees it), or -errno with err saying why. */
int auth_load(const struct sb_config *c, struct key_set **out, char *err, size_t errlen);

/* The master: makes set (NULL: no keys file) the keys in force, and gives its ids counters. */
void auth_publish(struct pool_stats *st, const struct key_set *set, bool exposed);

/* The key whose secret an Authorization header value carries: 0 with id (and *limits when not
 * NULL), or -1. Constant time in the secret (keys_match). */
int auth_lookup(const struct key_table *t, const char *authorization, char id[KEY_ID_MAX + 1],
                struct key_limits *limits);

/* nginx's auth subrequest (PYEXEC_PATH /_pyexec_auth): 204 with X-Pyexec-Key: <id>, or 401 (nginx
 * sends the JSON page); without a keys file, 204 and no key. */
void auth_handle(FCGX_Request *req, struct pool_stats *st);

/* A request nginx refused with 429 (PYEXEC_PATH /_pyexec_error/rate_limited; PYEXEC_KEY its key, PYEXEC_LIMIT
 * nginx's $limit_req_status): the rate_limited answer, counted for the key. */
void auth_limited(FCGX_Request *req, struct pool_stats *st);

#endif
