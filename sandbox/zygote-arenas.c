/* zygote-arenas.c — the warm interpreter's object arenas in one huge-page region.
 *
 * Why: every request's script process is a fork of the warm interpreter, and a fork copies,
 * and the process's exit tears down, one page-table entry per 4 KiB page mapped. CPython
 * mmaps each 1 MiB arena of small objects on its own, wherever the kernel puts it, so the
 * arenas of a pandas interpreter (~28 MiB) are ~25 mappings between the libraries', none of
 * them 2 MiB-aligned, and collapse_heap (zygote-main.c) can turn none of them into huge
 * pages. Carved instead from one 2 MiB-aligned region marked MADV_HUGEPAGE, they become
 * ~14 huge pages: a fork copies one entry per 2 MiB there (a page the child writes is still
 * split and copied 4 KiB at a time). Measured with the pandas tier, a fork + the seed pandas
 * script + exit took ~13% less CPU (7.5-8.1 ms against 9.1-9.3 ms, 3 runs of 5 x 200).
 *
 * Only while the preloads import: zygote_arenas_seal() then gives back the region's unused
 * tail, so the script's address space (RLIMIT_AS) holds no more than CPython's own arenas
 * would, and the arenas made after it, in the script processes, are CPython's plain mmaps. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdbool.h>
#include <stdint.h>
#include <sys/mman.h>

#include "zygote-arenas.h"

#define HUGE_PAGE (2UL << 20)
#define REGION_SIZE (1UL << 30) /* address space only: the full tier's arenas use ~100 MiB */
#define FREED_MAX 256

static struct {
        char *start, *next, *end; /* end: of the region still mapped */
        bool sealed;
        void *freed[FREED_MAX]; /* arenas freed before the seal, handed out again first */
        size_t freed_size[FREED_MAX];
        int nfreed;
} region;

static bool in_region(const void *p)
{
        return region.start && (const char *)p >= region.start && (const char *)p < region.end;
}

/* CPython's own arena allocation (Objects/obmalloc.c, _PyObject_ArenaMmap). */
static void *plain_alloc(size_t size)
{
        void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        return p == MAP_FAILED ? NULL : p;
}

static void *arena_alloc(void *ctx, size_t size)
{
        (void)ctx;
        if (region.sealed || !region.start)
                return plain_alloc(size);
        for (int i = region.nfreed - 1; i >= 0; i--) {
                if (region.freed_size[i] == size) {
                        void *p = region.freed[i];
                        region.freed[i] = region.freed[--region.nfreed];
                        region.freed_size[i] = region.freed_size[region.nfreed];
                        return p;
                }
        }
        if ((size_t)(region.end - region.next) < size)
                return plain_alloc(size);
        void *p = region.next;
        region.next += size;
        return p;
}

static void arena_free(void *ctx, void *p, size_t size)
{
        (void)ctx;
        if (!in_region(p)) {
                munmap(p, size);
                return;
        }
        /* Its memory goes back now, as with munmap; its addresses stay in the region. */
        (void)madvise(p, size, MADV_DONTNEED);
        if (!region.sealed && region.nfreed < FREED_MAX) {
                region.freed[region.nfreed] = p;
                region.freed_size[region.nfreed++] = size;
        }
}

void zygote_arenas_reserve(void)
{
        size_t span = REGION_SIZE + HUGE_PAGE;
        char *raw = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (raw == MAP_FAILED)
                return; /* CPython's arenas, as without this */
        char *start = (char *)(((uintptr_t)raw + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1));
        if (start > raw)
                munmap(raw, (size_t)(start - raw));
        munmap(start + REGION_SIZE, (size_t)(raw + span - (start + REGION_SIZE)));
        (void)madvise(start, REGION_SIZE, MADV_HUGEPAGE);
        region.start = region.next = start;
        region.end = start + REGION_SIZE;
        PyObjectArenaAllocator allocator = { NULL, arena_alloc, arena_free };
        PyObject_SetArenaAllocator(&allocator);
}

void zygote_arenas_seal(void)
{
        if (!region.start || region.sealed)
                return;
        region.sealed = true;
        region.nfreed = 0;
        char *used_end = (char *)(((uintptr_t)region.next + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1));
        if (used_end < region.end)
                munmap(used_end, (size_t)(region.end - used_end));
        region.end = used_end;
}
