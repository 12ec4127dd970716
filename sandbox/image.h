/* image.h — the pool's own programs (pyexec-zygote, pyexec-init) as sealed in-memory copies.
 *
 * A sandbox's processes must hold no byte of the host: not its environment, not the paths of
 * the install. A program exec'd from its file shows that file's host path in /proc/self/exe,
 * /proc/self/maps and the AT_EXECFN auxiliary vector entry (the build directory, say). Exec'd
 * from a sealed memfd copy instead, it shows "/memfd:NAME (deleted)" and "/dev/fd/N": nothing
 * of the host, and a rebuild of the file on disk cannot change a running pool. */
#ifndef PYEXEC_IMAGE_H
#define PYEXEC_IMAGE_H

#include <stddef.h>

/* The path of program name beside the running binary (pyexec-worker, pyexec-run). */
void sb_image_path_beside(const char *name, char *out, size_t outlen);

/* A sealed, CLOEXEC memfd holding a copy of the file at path, named name. fd or -errno. */
int sb_image_open(const char *path, const char *name);

/* sb_image_open() once per process and name: later calls return the same descriptor (every
 * zygote, every init factory a process starts is exec'd from one copy). fd or -errno. */
int sb_image_once(const char *path, const char *name);

/* execveat() of an image: returns only on failure, with -errno. */
int sb_image_exec(int image_fd, char *const argv[], char *const envp[]);

#endif
