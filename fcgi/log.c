/* log.c — logfmt lines on standard error. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

void log_line(const char *fmt, ...)
{
        char buf[2048];
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        int n = (int)strftime(buf, sizeof(buf), "time=%Y-%m-%dT%H:%M:%S", &tm);
        n += snprintf(buf + n, sizeof(buf) - (size_t)n, ".%03ldZ pid=%d ", ts.tv_nsec / 1000000, (int)getpid());
        va_list ap;
        va_start(ap, fmt);
        int m = vsnprintf(buf + n, sizeof(buf) - (size_t)n - 1, fmt, ap);
        va_end(ap);
        n = m < 0 ? n : (n + m >= (int)sizeof(buf) - 1 ? (int)sizeof(buf) - 2 : n + m);
        buf[n++] = '\n';
        (void)write_all(2, buf, (size_t)n);
}
