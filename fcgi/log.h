/* log.h — one line per event on standard error, in logfmt (key=value), for a log shipper. */
#ifndef PYEXEC_LOG_H
#define PYEXEC_LOG_H

/* Writes "<UTC time> pid=<pid> " + the formatted text + "\n" in one write(2), so lines from
 * the pool's processes never interleave. */
void log_line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
