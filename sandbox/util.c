/* util.c — EINTR-safe I/O and the growable buffer. */
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

int write_all(int fd, const void *buf, size_t len)
{
        const char *p = buf;
        while (len > 0) {
                ssize_t n = write(fd, p, len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                p += n;
                len -= (size_t)n;
        }
        return 0;
}

ssize_t send_with_fds(int sock, const void *data, size_t len, const int *fds, size_t nfds, int flags)
{
        if (nfds > SEND_FDS_MAX)
                return -EINVAL;
        char control[CMSG_SPACE(sizeof(int) * SEND_FDS_MAX)];
        memset(control, 0, sizeof(control));
        struct iovec iov = { (void *)data, len };
        struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
        if (nfds) {
                msg.msg_control = control;
                msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
                struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
                *c = (struct cmsghdr){ .cmsg_len = CMSG_LEN(sizeof(int) * nfds), .cmsg_level = SOL_SOCKET,
                                       .cmsg_type = SCM_RIGHTS };
                memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
        }
        ssize_t n;
        while ((n = sendmsg(sock, &msg, flags | MSG_NOSIGNAL)) < 0 && errno == EINTR)
                ;
        return n < 0 ? -errno : n;
}

ssize_t read_all(int fd, void *buf, size_t len)
{
        char *p = buf;
        size_t got = 0;
        while (got < len) {
                ssize_t n = read(fd, p + got, len - got);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        break;
                got += (size_t)n;
        }
        return (ssize_t)got;
}

void sbuf_free(struct sbuf *b)
{
        free(b->data);
        b->data = NULL;
        b->len = b->cap = 0;
        b->oom = false;
}

int sbuf_reserve(struct sbuf *b, size_t extra)
{
        if (b->oom)
                return -ENOMEM;
        if (b->len + extra + 1 <= b->cap)
                return 0;
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + extra + 1) {
                if (cap > SIZE_MAX / 2) {
                        b->oom = true;
                        return -ENOMEM;
                }
                cap *= 2;
        }
        char *d = realloc(b->data, cap);
        if (!d) {
                b->oom = true;
                return -ENOMEM;
        }
        b->data = d;
        b->cap = cap;
        return 0;
}

int sbuf_append(struct sbuf *b, const void *p, size_t n)
{
        int r = sbuf_reserve(b, n);
        if (r < 0)
                return r;
        if (n)
                memcpy(b->data + b->len, p, n);
        b->len += n;
        b->data[b->len] = '\0';
        return 0;
}

int sbuf_puts(struct sbuf *b, const char *s)
{
        return sbuf_append(b, s, strlen(s));
}

int sbuf_printf(struct sbuf *b, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(NULL, 0, fmt, ap);
        va_end(ap);
        if (n < 0)
                return -EINVAL;
        int r = sbuf_reserve(b, (size_t)n);
        if (r < 0)
                return r;
        va_start(ap, fmt);
        vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
        va_end(ap);
        b->len += (size_t)n;
        return 0;
}

int write_text_file(const char *path, int flags, const char *text)
{
        int fd = open(path, flags | O_WRONLY | O_CLOEXEC, 0644);
        if (fd < 0)
                return -errno;
        int r = write_all(fd, text, strlen(text));
        (void)close(fd);
        return r;
}

long long monotonic_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

long long monotonic_us(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}
