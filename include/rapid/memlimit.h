/* rapid/memlimit.h - how much memory a run may still take, so that a run
 * that cannot fit is refused up front instead of swapping or being killed
 * half-way (rapid coadd and rapid sim check their estimates against it,
 * rapid_coadd_memory and rapid_sim_memory).
 *
 * Available memory is the smaller of
 *   - MemAvailable in /proc/meminfo (the kernel's estimate of what can be
 *     allocated without swapping), and
 *   - the room left under the memory limit of the process's cgroup: for
 *     cgroup v2 the smallest memory.max - in use over the cgroup and its
 *     ancestors, for v1 the hierarchical limit - in use; "in use" leaves
 *     out the inactive file cache, which the kernel reclaims first (the
 *     working set, as container runtimes count it).
 * The cgroup is found in /proc/self/cgroup, under /sys/fs/cgroup (v2 there
 * or in its unified/ folder, v1 in memory/); a path that does not exist
 * there (another cgroup namespace) falls back to the mount's root.
 */
#ifndef RAPID_MEMLIMIT_H
#define RAPID_MEMLIMIT_H

#include <stddef.h>
#include <stdint.h>

#include "rapid/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Where to read from; NULL fields take the system's files (tests point
 * them at files of their own). */
typedef struct rapid_mem_sources {
    const char *meminfo;      /* "/proc/meminfo" */
    const char *self_cgroup;  /* "/proc/self/cgroup" */
    const char *cgroup_root;  /* "/sys/fs/cgroup" */
} rapid_mem_sources;

typedef struct rapid_mem_avail {
    uint64_t bytes;    /* what the process may still allocate */
    char source[600];  /* where that figure comes from, for messages:
                        * "MemAvailable in /proc/meminfo" or the cgroup's
                        * limit file */
} rapid_mem_avail;

/* The memory available (src NULL: the system's files).  RAPID_E_IO if
 * neither /proc/meminfo nor a cgroup limit can be read. */
int rapid_mem_available(const rapid_mem_sources *src, rapid_mem_avail *out,
                        rapid_err *err);

/* bytes as "512 MiB" or "21.6 GiB" into buf. */
void rapid_mem_format(uint64_t bytes, char *buf, size_t n);

/* 0 if need bytes fit in what is available; otherwise RAPID_E_NOMEM with
 * "<what> needs about <need> of memory, more than the <avail> available
 * (<source>)".  If the available memory cannot be found, 0: the check is
 * skipped. */
int rapid_mem_check(uint64_t need, const char *what,
                    const rapid_mem_sources *src, rapid_err *err);

#ifdef __cplusplus
}
#endif
#endif
