/* fuzz_config.c — sb_limits_load() on any file: the input is written to a memfd and loaded
 * through /proc/self/fd, so the parser reads it exactly as it reads config/pyexec.conf.
 *
 * Oracles: a file that loads leaves every value in its documented range; one that does not
 * says why in a NUL-terminated message. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"
#include "util.h"

static bool in_range(const struct sb_limits *l)
{
        return l->wall_time_s >= 1 && l->wall_time_s <= 3600 && l->cpu_time_s >= 1 && l->cpu_time_s <= 3600 &&
               l->memory_mb >= 64 && l->memory_mb <= (1 << 20) && l->max_processes >= 2 &&
               l->script_max_bytes >= 1 && l->body_max_bytes >= 16 && l->result_max_bytes >= 16 &&
               l->warm <= 1 && l->prefork <= 1 && l->warm_tiers <= 1 && l->workers >= 1 && l->workers <= 256 &&
               memchr(l->warm_preload, '\0', sizeof(l->warm_preload)) != NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static int fd = -1;
        static char path[64];
        if (fd < 0) {
                fd = memfd_create("pyexec-fuzz.conf", MFD_CLOEXEC);
                if (fd < 0)
                        abort();
                snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
        }
        if (ftruncate(fd, 0) < 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
                abort();

        struct sb_limits l;
        sb_limits_default(&l);
        char err[256];
        memset(err, 'x', sizeof(err));
        int r = sb_limits_load(&l, path, err, sizeof(err));
        if (r == 0 && !in_range(&l))
                abort();
        if (r < 0 && !memchr(err, '\0', sizeof(err)))
                abort();
        return 0;
}
