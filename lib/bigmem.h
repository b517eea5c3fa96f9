/* bigmem.h - allocation of large pixel buffers (not public).
 *
 * A 7000 x 7000 float image is 196 MB; touching fresh memory of that size
 * costs one page fault (and one page zeroing) per 4 kB, about 48 000 faults
 * per image.  These allocators ask the kernel to back large blocks with
 * transparent huge pages (madvise MADV_HUGEPAGE; this machine's THP mode is
 * "madvise", so nothing happens without the hint), which takes 512 times
 * fewer faults.  Blocks under RAPID_BIG_MIN bytes get no hint.
 *
 * Ownership: both return plain malloc/calloc memory, released with free();
 * a buffer may become the data of a rapid_image (rapid_image_release frees
 * it).  NULL when out of memory (or n is 0).  Thread-safe.
 */
#ifndef RAPID_BIGMEM_H
#define RAPID_BIGMEM_H

#include <stddef.h>

/* 32 MB: glibc serves every block this large with its own mmap (its
 * mmap threshold never rises above 32 MB on 64-bit), so the hint applies
 * to pages no other allocation shares and goes away with free(). */
#define RAPID_BIG_MIN ((size_t)32 << 20)

/* Like malloc(n): contents undefined. */
void *rapid_big_malloc(size_t n);

/* Like calloc(count, size): zeroed (by the kernel, page by page as they
 * are first touched, when the block is fresh from mmap), NULL on overflow
 * of count * size. */
void *rapid_big_calloc(size_t count, size_t size);

#endif
