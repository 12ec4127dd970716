/* seccomp-bpf.c — the compiled seccomp program: loaded from its memfd, installed.
 *
 * Apart from seccomp.c (which compiles it with libseccomp) so that pyexec-init, a small static
 * program, can install the filter without linking libseccomp. */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"

static struct sock_filter *program;
static unsigned short program_len;
static int program_fd = -1;

int sb_seccomp_program_fd(void)
{
        return program_fd;
}

int sb_seccomp_load(int fd)
{
        struct stat st;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (st.st_size <= 0 || st.st_size % (off_t)sizeof(struct sock_filter) != 0 ||
            st.st_size / (off_t)sizeof(struct sock_filter) > 0xffff)
                return -EINVAL;
        struct sock_filter *p = malloc((size_t)st.st_size);
        if (!p)
                return -ENOMEM;
        if (pread(fd, p, (size_t)st.st_size, 0) != st.st_size) {
                free(p);
                return -EIO;
        }
        free(program);
        program = p;
        program_len = (unsigned short)(st.st_size / (off_t)sizeof(struct sock_filter));
        program_fd = fd;
        return 0;
}

int sb_seccomp_install(void)
{
        if (!program)
                return -EINVAL;
        struct sock_fprog fprog = { .len = program_len, .filter = program };
        if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fprog) < 0)
                return -errno;
        return 0;
}
