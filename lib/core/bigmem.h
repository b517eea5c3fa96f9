/* bigmem.h - allocation of large pixel buffers (not public).
 *
 * A 7000 x 7000 float image is 196 MB, and a reference image passes more
 * than 3 GB of such buffers through its life (the running sums, the mesh,
 * the maps, the extraction's copies).  Fresh memory costs a page fault and
 * a page zeroing per 4 kB at first touch; on a virtual machine whose host
 * backs guest memory lazily it costs far more (measured on the development
 * VM: 0.5 to 4 s per 1.6 GB, against 0.06 s to memset the same memory once
 * it is mapped).  So blocks of RAPID_BIG_MIN bytes or more:
 *  - are their own mappings, 2 MB aligned, with the transparent-huge-page
 *    hint (512 times fewer faults; THP mode "madvise" needs the hint);
 *  - go back to a process-wide pool when freed, already faulted in, and
 *    later blocks are carved from the pool before any fresh mapping;
 *  - a block larger than any in the pool is gathered from the pool's
 *    blocks, largest first (mremap moves their pages into consecutive
 *    parts of the new block), only what the pool lacks fresh; the rest
 *    of the pool stays.
 * The pool only holds memory that was in use before, and is drawn on
 * before any fresh mapping, so it never raises the peak of the big blocks
 * (memory allocated otherwise while it is held adds to it);
 * rapid_big_trim() returns it to the system.
 *
 * Ownership: free with rapid_big_free() (which also takes plain malloc
 * memory, so a buffer that becomes a rapid_image's data is released by
 * rapid_image_release).  Under AddressSanitizer the pool is off and these
 * are plain malloc/calloc/free, so the sanitizer still sees every block.
 * NULL when out of memory (or n is 0).
 *
 * Global lock: the pool is process-wide and guarded by one mutex, held
 * while a block is picked, mapped, returned or unmapped, never while its
 * memory is touched or zeroed: thread-safe, and it does not serialise work.
 */
#ifndef RAPID_BIGMEM_H
#define RAPID_BIGMEM_H

#include <stddef.h>

#define RAPID_BIG_MIN ((size_t)32 << 20)

/* Like malloc(n): contents undefined. */
void *rapid_big_malloc(size_t n);

/* Like calloc(count, size): zeroed; NULL on overflow of count * size. */
void *rapid_big_calloc(size_t count, size_t size);

/* Like rapid_big_calloc, for arrays that stay mostly zero: a pooled block
 * if one fits (its memory is held already: cleared, it costs less than a
 * page fault at every 4 kB read), else a fresh block in 4 kB pages without
 * the huge-page hint, so that only the pages ever written take memory (a
 * read of an untouched page maps the shared zero page), unmapped when
 * freed, not pooled: mostly untouched, it would hand the next block memory
 * to fault in 4 kB at a time. */
void *rapid_big_calloc_sparse(size_t count, size_t size);

/* Like free(p), for these blocks and for any malloc'd pointer. */
void rapid_big_free(void *p);

/* Unmap the pool (blocks in use stay).  Returns the bytes released. */
size_t rapid_big_trim(void);

/* 1 when big blocks go through the pool (0 under AddressSanitizer). */
int rapid_big_pooling(void);

/* Bytes in the pool, and in big blocks in use (for tests). */
void rapid_big_stats(size_t *pooled, size_t *inuse);

#endif
