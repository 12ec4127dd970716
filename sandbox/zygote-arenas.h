/* zygote-arenas.h — the warm interpreter's object arenas, laid out for cheap forks
 * (zygote-arenas.c). */
#ifndef PYEXEC_ZYGOTE_ARENAS_H
#define PYEXEC_ZYGOTE_ARENAS_H

/* Before the interpreter starts: the arenas of the objects the preloads make come from one
 * region backed by transparent huge pages (best effort: where that fails, CPython's own). */
void zygote_arenas_reserve(void);

/* After the preloads, before the first fork: arenas come from mmap again, as in CPython, and
 * the region's unused tail is given back (scripts run under RLIMIT_AS). */
void zygote_arenas_seal(void);

#endif
