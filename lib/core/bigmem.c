/* bigmem.c - large buffers: huge-page mappings recycled through a pool. */
#define _GNU_SOURCE /* mremap */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "bigmem.h"

#if defined(__SANITIZE_ADDRESS__)
#define POOL 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define POOL 0
#endif
#endif
#ifndef POOL
#define POOL 1
#endif

#define HUGE_PAGE ((size_t)2 << 20)
#define NBLK 256

typedef struct blk {
    char *p;
    size_t n;
    int sparse; /* live blocks: mostly never touched, in 4 kB pages */
} blk;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static blk live[NBLK], pool[NBLK];
static int nlive, npool;

#if POOL
/* A fresh mapping of n bytes (a multiple of 2 MB) on a 2 MB boundary, so
 * that every page of it can be huge. */
static char *map_fresh(size_t n, int huge)
{
    char *p = mmap(NULL, n + HUGE_PAGE, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    uintptr_t a;

    if (p == MAP_FAILED)
        return NULL;
    a = ((uintptr_t)p + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1);
    if (a > (uintptr_t)p)
        munmap(p, a - (uintptr_t)p);
    if ((uintptr_t)p + HUGE_PAGE > a)
        munmap((char *)a + n, (uintptr_t)p + HUGE_PAGE - a);
#if defined(MADV_HUGEPAGE) && defined(MADV_NOHUGEPAGE)
    /* a refusal only costs speed (or memory) */
    (void)madvise((void *)a, n, huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
#endif
    return (char *)a;
}

static void pool_trim_locked(size_t *released)
{
    int k;

    for (k = 0; k < npool; k++) {
        munmap(pool[k].p, pool[k].n);
        *released += pool[k].n;
    }
    npool = 0;
}

/* A reservation of m bytes of address space at a 2 MB boundary (no
 * memory behind it: PROT_NONE, not counted against the commit limit), its
 * slack around unmapped.  NULL on failure. */
static char *reserve(size_t m)
{
    char *r = mmap(NULL, m + HUGE_PAGE, PROT_NONE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    uintptr_t a;

    if (r == MAP_FAILED)
        return NULL;
    a = ((uintptr_t)r + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1);
    if (a > (uintptr_t)r)
        munmap(r, a - (uintptr_t)r);
    if ((uintptr_t)r + HUGE_PAGE > a)
        munmap((char *)a + m, (uintptr_t)r + HUGE_PAGE - a);
    return (char *)a;
}

/* A block of m bytes gathered from the pool, largest blocks first: each
 * moved (mremap moves page tables, not pages: 2 MB aligned, huge pages
 * move whole) into the next part of a reservation, the last one split if
 * it is larger than what is left to fill; only what the pool cannot cover
 * is fresh.  The rest of the pool stays.  *dirty: the bytes at the start
 * that came from the pool.  NULL (pool as it was, but for blocks already
 * moved, which are unmapped) on failure. */
static char *gather(size_t m, size_t *dirty)
{
    char *q = reserve(m);
    size_t off = 0;
    int k, best;

    *dirty = 0;
    if (!q)
        return NULL;
    while (off < m && npool > 0) {
        size_t t;
        for (k = 1, best = 0; k < npool; k++)
            if (pool[k].n > pool[best].n)
                best = k;
        t = pool[best].n < m - off ? pool[best].n : m - off;
        /* onto the reservation, whose part it replaces */
        if (mremap(pool[best].p, t, t, MREMAP_MAYMOVE | MREMAP_FIXED,
                   q + off) == MAP_FAILED)
            break; /* the rest fresh */
        if (t < pool[best].n)
            pool[best].p += t, pool[best].n -= t;
        else
            pool[best] = pool[--npool];
        off += t;
    }
    if (off < m && mmap(q + off, m - off, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1,
                        0) == MAP_FAILED) {
        munmap(q, m);
        return NULL;
    }
#if defined(MADV_HUGEPAGE)
    (void)madvise(q, m, MADV_HUGEPAGE); /* the fresh part's hint */
#endif
    *dirty = off;
    return q;
}

/* Returns the block and into *dirty how many of its first bytes may hold
 * old data (the rest is fresh, so zero); sparse: a pooled block that fits,
 * else fresh in small pages (never gathered). */
static void *big_alloc(size_t n, int sparse, size_t *dirty)
{
    size_t m = (n + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
    char *p = NULL;
    int k, best = -1;

    pthread_mutex_lock(&lock);
    if (nlive == NBLK) { /* untracked: an ordinary block */
        pthread_mutex_unlock(&lock);
        *dirty = n;
        return malloc(n);
    }
    /* a sparse block too: memory the pool holds costs nothing more, and
     * clearing it less than faulting the zero page in at every 4 kB read */
    for (k = 0; k < npool; k++)
        if (pool[k].n >= m && (best < 0 || pool[k].n < pool[best].n))
            best = k;
    if (best >= 0) {
        sparse = 0;
        p = pool[best].p;
        if (pool[best].n > m)
            pool[best].p += m, pool[best].n -= m;
        else
            pool[best] = pool[--npool];
        *dirty = n;
    } else if (!sparse && npool > 0) {
        /* nothing fits: the pool's blocks gathered into one, so that
         * their pages need not be faulted in and zeroed again (on a
         * virtual machine that costs several times what clearing them
         * does), and only the rest fresh */
        if ((p = gather(m, dirty)) != NULL && *dirty > n)
            *dirty = n;
    } else {
        *dirty = 0;
        p = map_fresh(m, !sparse);
    }
    if (p) {
        live[nlive].p = p, live[nlive].n = m;
        live[nlive++].sparse = sparse;
    }
    pthread_mutex_unlock(&lock);
    return p;
}
#endif

void *rapid_big_malloc(size_t n)
{
#if POOL
    size_t dirty;
    if (n >= RAPID_BIG_MIN)
        return big_alloc(n, 0, &dirty);
#endif
    return n ? malloc(n) : NULL;
}

/* Zeroed memory, from the pool (sparse 0) or always fresh (sparse 1). */
static void *big_calloc(size_t count, size_t size, int sparse)
{
    if (!count || !size || count > SIZE_MAX / size)
        return NULL;
#if POOL
    size_t n = count * size;
    if (n >= RAPID_BIG_MIN) {
        size_t dirty;
        void *p = big_alloc(n, sparse, &dirty);
        if (p && dirty) /* from the pool, or an ordinary block */
            memset(p, 0, dirty);
        return p;
    }
#else
    (void)sparse;
#endif
    return calloc(count, size);
}

void *rapid_big_calloc(size_t count, size_t size)
{
    return big_calloc(count, size, 0);
}

void *rapid_big_calloc_sparse(size_t count, size_t size)
{
    return big_calloc(count, size, 1);
}

void rapid_big_free(void *ptr)
{
    char *p = ptr;
    int k, j;

    if (!p)
        return;
    pthread_mutex_lock(&lock);
    for (k = 0; k < nlive && live[k].p != p; k++)
        ;
    if (k == nlive) {
        pthread_mutex_unlock(&lock);
        free(p);
        return;
    }
    {
        blk b = live[k];
        live[k] = live[--nlive];
        if (b.sparse) {
            /* mostly untouched: in the pool it would be memory that is
             * not there, which the next block carved from it faults in
             * 4 kB at a time (its pages are not hinted huge) */
            pthread_mutex_unlock(&lock);
            munmap(b.p, b.n);
            return;
        }
        b.sparse = 0;
        /* merge with the pool's neighbours in memory */
        for (j = 0; j < npool;)
            if (pool[j].p + pool[j].n == b.p) {
                b.p = pool[j].p, b.n += pool[j].n;
                pool[j] = pool[--npool];
                j = 0;
            } else if (b.p + b.n == pool[j].p) {
                b.n += pool[j].n;
                pool[j] = pool[--npool];
                j = 0;
            } else {
                j++;
            }
        if (npool < NBLK)
            pool[npool++] = b;
        else
            munmap(b.p, b.n);
    }
    pthread_mutex_unlock(&lock);
}

size_t rapid_big_trim(void)
{
    size_t released = 0;

#if POOL
    pthread_mutex_lock(&lock);
    pool_trim_locked(&released);
    pthread_mutex_unlock(&lock);
#endif
    return released;
}

int rapid_big_pooling(void)
{
    return POOL;
}

void rapid_big_stats(size_t *pooled, size_t *inuse)
{
    int k;

    pthread_mutex_lock(&lock);
    *pooled = *inuse = 0;
    for (k = 0; k < npool; k++)
        *pooled += pool[k].n;
    for (k = 0; k < nlive; k++)
        *inuse += live[k].n;
    pthread_mutex_unlock(&lock);
}
