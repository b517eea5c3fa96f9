/* memlimit.c - the memory a run may still take (rapid/memlimit.h). */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "rapid/memlimit.h"

/* v1 reports "no limit" as a page-rounded 2^63 - 1 */
#define NO_LIMIT ((uint64_t)1 << 62)

/* A file holding one number: 0 and *v, 1 for "max", -1 if unreadable. */
static int read_number(const char *path, uint64_t *v)
{
    FILE *f = fopen(path, "r");
    char buf[64];
    char *end;
    int rc = -1;

    if (!f)
        return -1;
    if (fgets(buf, sizeof buf, f)) {
        if (strncmp(buf, "max", 3) == 0) {
            rc = 1;
        } else {
            errno = 0;
            *v = strtoull(buf, &end, 10);
            if (end != buf && errno == 0)
                rc = 0;
        }
    }
    fclose(f);
    return rc;
}

/* The value of "key <number>" lines (memory.stat) or "key: <number> kB"
 * (meminfo, in bytes): 0 if found. */
static int read_key(const char *path, const char *key, uint64_t *v)
{
    FILE *f = fopen(path, "r");
    char line[256];
    size_t n = strlen(key);
    int rc = -1;

    if (!f)
        return -1;
    while (rc != 0 && fgets(line, sizeof line, f)) {
        unsigned long long x;
        const char *p = line + n;
        if (strncmp(line, key, n) != 0 || (*p != ' ' && *p != ':'))
            continue;
        if (*p == ':')
            p++;
        if (sscanf(p, "%llu", &x) == 1) {
            *v = strstr(p, "kB") ? (uint64_t)x * 1024 : (uint64_t)x;
            rc = 0;
        }
    }
    fclose(f);
    return rc;
}

/* snprintf for paths: a path cut short names no file, so truncation needs
 * no check here (the file is then simply not found). */
static void fmt(char *buf, size_t n, const char *f, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
static void fmt(char *buf, size_t n, const char *f, ...)
{
    va_list ap;

    va_start(ap, f);
    vsnprintf(buf, n, f, ap);
    va_end(ap);
}

static int is_dir(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

/* The cgroup path of the process in one hierarchy of /proc/self/cgroup:
 * v2 ("0::/path") or v1 with the memory controller ("N:...memory...:/path"). */
static int cgroup_path(const char *self, int v2, char *out, size_t outsz)
{
    FILE *f = fopen(self, "r");
    char line[4200];
    int rc = -1;

    if (!f)
        return -1;
    while (rc != 0 && fgets(line, sizeof line, f)) {
        char *a = strchr(line, ':'), *b = a ? strchr(a + 1, ':') : NULL, *e;
        int match;
        if (!b)
            continue;
        *b = '\0';
        if (v2) {
            match = strncmp(line, "0:", 2) == 0 && a[1] == '\0';
        } else {
            char *tok, *save = NULL;
            match = 0;
            for (tok = strtok_r(a + 1, ",", &save); tok && !match;
                 tok = strtok_r(NULL, ",", &save))
                match = strcmp(tok, "memory") == 0;
        }
        if (!match)
            continue;
        if ((e = strchr(b + 1, '\n')) != NULL)
            *e = '\0';
        if (strlen(b + 1) < outsz) {
            strcpy(out, b + 1);
            rc = 0;
        }
    }
    fclose(f);
    return rc;
}

/* Room left under a limit: limit - (usage - inactive file cache). */
static uint64_t room(uint64_t limit, uint64_t usage, uint64_t inactive)
{
    uint64_t used = usage > inactive ? usage - inactive : 0;
    return limit > used ? limit - used : 0;
}

/* cgroup v2: the tightest memory.max over the cgroup and its ancestors. */
static int cgroup_v2(const char *root, const char *path, uint64_t *avail,
                     char *source, size_t sourcesz)
{
    static const char *const mounts[2] = {"", "/unified"};
    char dir[4600], file[4700];
    int m, found = 0;

    for (m = 0; m < 2 && !found; m++) {
        char sub[4200];
        fmt(dir, sizeof dir, "%s%s", root, mounts[m]);
        if (!is_dir(dir))
            continue;
        fmt(sub, sizeof sub, "%s", path);
        fmt(file, sizeof file, "%s%s", dir, sub);
        if (!is_dir(file))
            sub[0] = '\0'; /* another namespace: its root is ours */
        for (;;) {
            uint64_t max, cur, inact = 0;
            char *slash;
            fmt(file, sizeof file, "%s%s/memory.max", dir, sub);
            if (read_number(file, &max) == 0) {
                fmt(file, sizeof file, "%s%s/memory.current", dir, sub);
                if (read_number(file, &cur) != 0)
                    cur = 0;
                fmt(file, sizeof file, "%s%s/memory.stat", dir, sub);
                read_key(file, "inactive_file", &inact);
                if (!found || room(max, cur, inact) < *avail) {
                    *avail = room(max, cur, inact);
                    fmt(source, sourcesz, "cgroup limit %s%s/memory.max",
                             dir, sub);
                }
                found = 1;
            }
            if (!sub[0] || !(slash = strrchr(sub, '/')))
                break;
            *slash = '\0';
        }
    }
    return found ? 0 : -1;
}

/* cgroup v1: the hierarchical limit of the memory controller's cgroup. */
static int cgroup_v1(const char *root, const char *path, uint64_t *avail,
                     char *source, size_t sourcesz)
{
    char dir[4600], file[4700];
    uint64_t limit, usage, inact = 0;

    fmt(dir, sizeof dir, "%s/memory%s", root, path);
    if (!is_dir(dir))
        fmt(dir, sizeof dir, "%s/memory", root);
    fmt(file, sizeof file, "%s/memory.stat", dir);
    if (read_key(file, "hierarchical_memory_limit", &limit) != 0) {
        fmt(file, sizeof file, "%s/memory.limit_in_bytes", dir);
        if (read_number(file, &limit) != 0)
            return -1;
    }
    if (limit >= NO_LIMIT)
        return -1;
    fmt(file, sizeof file, "%s/memory.usage_in_bytes", dir);
    if (read_number(file, &usage) != 0)
        usage = 0;
    fmt(file, sizeof file, "%s/memory.stat", dir);
    read_key(file, "total_inactive_file", &inact);
    *avail = room(limit, usage, inact);
    fmt(source, sourcesz, "cgroup limit %s/memory.limit_in_bytes", dir);
    return 0;
}

int rapid_mem_available(const rapid_mem_sources *src, rapid_mem_avail *out,
                        rapid_err *err)
{
    const char *meminfo = src && src->meminfo ? src->meminfo : "/proc/meminfo";
    const char *self = src && src->self_cgroup ? src->self_cgroup
                                               : "/proc/self/cgroup";
    const char *root = src && src->cgroup_root ? src->cgroup_root
                                               : "/sys/fs/cgroup";
    char path[4200], source[sizeof out->source];
    uint64_t v, free_, cached;
    int found = 0;

    memset(out, 0, sizeof *out);
    if (read_key(meminfo, "MemAvailable", &v) == 0 ||
        /* kernels before 3.14: free plus page cache */
        (read_key(meminfo, "MemFree", &free_) == 0 &&
         read_key(meminfo, "Cached", &cached) == 0 && (v = free_ + cached, 1))) {
        out->bytes = v;
        snprintf(out->source, sizeof out->source, "MemAvailable in %s", meminfo);
        found = 1;
    }
    if ((cgroup_path(self, 1, path, sizeof path) == 0 &&
         cgroup_v2(root, path, &v, source, sizeof source) == 0) ||
        (cgroup_path(self, 0, path, sizeof path) == 0 &&
         cgroup_v1(root, path, &v, source, sizeof source) == 0)) {
        if (!found || v < out->bytes) {
            out->bytes = v;
            memcpy(out->source, source, sizeof source);
        }
        found = 1;
    }
    if (!found)
        return rapid_fail(err, RAPID_E_IO, "%s: cannot read the memory "
                          "available (nor a cgroup limit)", meminfo);
    return 0;
}

void rapid_mem_format(uint64_t bytes, char *buf, size_t n)
{
    double b = (double)bytes;

    if (b >= 1024.0 * 1024 * 1024)
        snprintf(buf, n, "%.1f GiB", b / (1024.0 * 1024 * 1024));
    else
        snprintf(buf, n, "%.0f MiB", b / (1024.0 * 1024));
}

int rapid_mem_check(uint64_t need, const char *what,
                    const rapid_mem_sources *src, rapid_err *err)
{
    rapid_mem_avail a;
    char sneed[32], savail[32];

    if (rapid_mem_available(src, &a, NULL) != 0 || need <= a.bytes)
        return 0;
    rapid_mem_format(need, sneed, sizeof sneed);
    rapid_mem_format(a.bytes, savail, sizeof savail);
    return rapid_fail(err, RAPID_E_NOMEM, "%s needs about %s of memory, more "
                      "than the %s available (%s)", what, sneed, savail,
                      a.source);
}
