/* testutil.c - shared helpers for the unit tests. */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"

static char dir[512];

/* Leave nothing behind after a normal exit (set RAPID_KEEP_TMP to keep). */
static void remove_tmpdir(void)
{
    char cmd[600];

    if (!dir[0] || getenv("RAPID_KEEP_TMP"))
        return;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

const char *test_tmpdir(void)
{
    const char *base;

    if (dir[0])
        return dir;
    base = getenv("RAPID_TEST_TMP");
    if (!base || !*base)
        base = "/tmp";
    mkdir(base, 0777);
    snprintf(dir, sizeof dir, "%s/t%ld-XXXXXX", base, (long)getpid());
    if (!mkdtemp(dir)) {
        perror(dir);
        abort();
    }
    atexit(remove_tmpdir);
    return dir;
}

const char *test_path(const char *name)
{
    static char buf[8][768];
    static int k;

    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", test_tmpdir(), name);
    return buf[k];
}

int test_count_entries(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *e;
    int n = 0;

    assert_non_null(d);
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

int test_count_prefixed(const char *path, const char *prefix)
{
    DIR *d = opendir(path);
    struct dirent *e;
    int n = 0;

    assert_non_null(d);
    while ((e = readdir(d)) != NULL)
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0)
            n++;
    closedir(d);
    return n;
}

double test_uniform(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (double)(z >> 11) * 0x1.0p-53;
}

int test_cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;

    return (x > y) - (x < y);
}

size_t test_robust(const float *v, const unsigned char *skip, size_t n,
                   double *med, double *sig)
{
    float *w = malloc((n ? n : 1) * sizeof *w);
    size_t i, m = 0;

    *med = *sig = NAN;
    if (!w)
        return 0;
    for (i = 0; i < n; i++)
        if (isfinite(v[i]) && !(skip && skip[i]))
            w[m++] = v[i];
    if (m > 0) {
        qsort(w, m, sizeof *w, test_cmp_float);
        *med = w[m / 2];
        for (i = 0; i < m; i++)
            w[i] = fabsf(w[i] - (float)*med);
        qsort(w, m, sizeof *w, test_cmp_float);
        *sig = 1.4826 * w[m / 2];
    }
    free(w);
    return m;
}
