/* image.c — programs exec'd from sealed memfd copies (see image.h). */
#define _GNU_SOURCE
#include "image.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "util.h"

void sb_image_path_beside(const char *name, char *out, size_t outlen)
{
        size_t need = strlen(name) + 1;
        ssize_t n = outlen > need ? readlink("/proc/self/exe", out, outlen - need) : -1;
        out[n > 0 ? n : 0] = '\0';
        char *slash = strrchr(out, '/');
        memcpy(slash ? slash + 1 : out, name, need);
}

int sb_image_open(const char *path, const char *name)
{
        cleanup_fd int src = open(path, O_RDONLY | O_CLOEXEC);
        if (src < 0)
                return -errno;
        struct stat st;
        if (fstat(src, &st) < 0)
                return -errno;
        int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (fd < 0)
                return -errno;
        off_t copied = 0;
        while (copied < st.st_size) {
                ssize_t n = sendfile(fd, src, &copied, (size_t)(st.st_size - copied));
                if (n <= 0) {
                        int e = n < 0 ? errno : EIO;
                        if (e == EINTR)
                                continue;
                        (void)close(fd);
                        return -e;
                }
        }
        /* Nobody, the pool included, may change the program once it is in use. */
        if (fchmod(fd, 0555) < 0 ||
            fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0) {
                int e = errno;
                (void)close(fd);
                return -e;
        }
        return fd;
}

int sb_image_once(const char *path, const char *name)
{
        static struct {
                const char *name;
                int fd;
        } opened[4];
        size_t i = 0;
        for (; i < ARRAY_SIZE(opened) && opened[i].name; i++)
                if (strcmp(opened[i].name, name) == 0)
                        return opened[i].fd;
        int fd = sb_image_open(path, name);
        if (fd >= 0 && i < ARRAY_SIZE(opened))
                opened[i] = (typeof(opened[0])){ name, fd };
        return fd;
}

int sb_image_exec(int image_fd, char *const argv[], char *const envp[])
{
        (void)syscall(SYS_execveat, image_fd, "", argv, envp, AT_EMPTY_PATH);
        return -errno;
}
