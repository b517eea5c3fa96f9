/* clones.h - RAPID_CLONES before a function compiles it three times, for
 * x86-64 with AVX-512, with AVX2 and for the baseline, and picks one when
 * the program loads (GCC's target_clones, an ifunc): the resampler's loops
 * vectorise four or eight doubles wide where the CPU can, and the build
 * stays portable.  All compute the same values: the files with clones are
 * built with -ffp-contract=off (lib/CMakeLists.txt), so the FMA that comes
 * with AVX-512 is never used to fuse a product and a sum.  (AVX-512 gains
 * 2-3 % in the edge pass on Zen 4.)
 *
 * Built with -DRAPID_PORTABLE=ON (CMake), there are no clones, no
 * intrinsics and no compiler builtins: plain C11 for any compiler and CPU,
 * which must make the same products (tests/same_products.sh). */
#ifndef RAPID_CLONES_H
#define RAPID_CLONES_H

#if !defined(RAPID_PORTABLE) && defined(__GNUC__) && !defined(__clang__) && \
    defined(__x86_64__) && defined(__linux__)
#define RAPID_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
/* for helpers that must be inlined into each clone (a call from a vector
 * clone would go to the baseline code) */
#define RAPID_INLINE static inline __attribute__((always_inline))
#else
#define RAPID_CLONES
#define RAPID_INLINE static inline
#endif

/* Fetch the cache line at p ahead of its use (a hint: no effect on values). */
#if !defined(RAPID_PORTABLE) && defined(__GNUC__)
#define RAPID_PREFETCH(p) __builtin_prefetch(p)
#else
#define RAPID_PREFETCH(p) ((void)(p))
#endif

#endif
