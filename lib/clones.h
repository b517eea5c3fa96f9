/* clones.h - RAPID_CLONES before a function compiles it twice, for x86-64
 * with AVX2 and for the baseline, and picks one when the program loads
 * (GCC's target_clones, an ifunc): the resampler's loops vectorise four
 * doubles wide where the CPU has AVX2, and the build stays portable.  Both
 * compute the same values: AVX2 brings no FMA, and these files are built
 * with -ffp-contract=off anyway (lib/CMakeLists.txt). */
#ifndef RAPID_CLONES_H
#define RAPID_CLONES_H

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define RAPID_CLONES __attribute__((target_clones("avx2", "default")))
/* for helpers that must be inlined into each clone (a call from the AVX2
 * clone would go to the baseline code) */
#define RAPID_INLINE static inline __attribute__((always_inline))
#else
#define RAPID_CLONES
#define RAPID_INLINE static inline
#endif

#endif
