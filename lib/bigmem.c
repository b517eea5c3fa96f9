/* bigmem.c - large buffers backed by transparent huge pages. */
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "bigmem.h"

#define HUGE_PAGE ((uintptr_t)2 << 20)

/* The hint covers the 2 MB-aligned pages wholly inside the block (a huge
 * page is used only where the whole aligned 2 MB lies in the mapping); a
 * refusal (THP off, old kernel) only costs the speed-up. */
static void *hint(void *p, size_t n)
{
    uintptr_t a, b;

    if (!p || n < RAPID_BIG_MIN)
        return p;
    a = ((uintptr_t)p + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
    b = ((uintptr_t)p + n) & ~(HUGE_PAGE - 1);
#ifdef MADV_HUGEPAGE
    if (b > a)
        (void)madvise((void *)a, b - a, MADV_HUGEPAGE);
#endif
    return p;
}

void *rapid_big_malloc(size_t n)
{
    return n ? hint(malloc(n), n) : NULL;
}

void *rapid_big_calloc(size_t count, size_t size)
{
    if (!count || !size || count > SIZE_MAX / size)
        return NULL;
    /* calloc leaves a fresh mmap untouched: the zeroing is the kernel's,
     * at first touch, after the hint. */
    return hint(calloc(count, size), count * size);
}
