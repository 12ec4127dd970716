/* util.h — small helpers shared by every module: cleanup attributes, EINTR-safe I/O,
 * and a growable byte buffer.
 *
 * Error contract (as everywhere in pyexec): functions return 0 (or a count) on success and
 * -errno on failure; they never exit and never log. */
#ifndef PYEXEC_UTIL_H
#define PYEXEC_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/types.h>
#include <unistd.h>

static inline void freep(void *p) { free(*(void **)p); }
static inline void closep(int *fd)
{
        if (*fd >= 0)
                (void)close(*fd);
}
#define cleanup_free __attribute__((cleanup(freep)))
#define cleanup_fd __attribute__((cleanup(closep)))

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Writes all of buf, retrying on EINTR and short writes. 0 or -errno. */
int write_all(int fd, const void *buf, size_t len);
/* Reads until EOF or len bytes. Returns the byte count or -errno. */
ssize_t read_all(int fd, void *buf, size_t len);
/* Sends len bytes of data as one message on sock with the descriptors fds[0..nfds) (at most
 * SEND_FDS_MAX; none: a plain message), retrying on EINTR; flags as sendmsg()'s, plus
 * MSG_NOSIGNAL. The bytes sent, or -errno. */
#define SEND_FDS_MAX 16
ssize_t send_with_fds(int sock, const void *data, size_t len, const int *fds, size_t nfds, int flags);

/* A growable byte buffer, always NUL-terminated so it can be used as a C string.
 * The owner frees data with sbuf_free(). */
struct sbuf {
        char *data;
        size_t len;
        size_t cap;
        bool oom; /* set once an allocation failed; further appends are dropped */
};

void sbuf_free(struct sbuf *b);
int sbuf_reserve(struct sbuf *b, size_t extra);
int sbuf_append(struct sbuf *b, const void *p, size_t n);
int sbuf_puts(struct sbuf *b, const char *s);
int sbuf_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Writes text to the file at path (opened with flags | O_WRONLY | O_CLOEXEC, mode 0644):
 * /proc and cgroup control files, small files of the sandbox's root. 0 or -errno. */
int write_text_file(const char *path, int flags, const char *text);

/* Milliseconds, and microseconds, from CLOCK_MONOTONIC. */
long long monotonic_ms(void);
long long monotonic_us(void);

#endif
