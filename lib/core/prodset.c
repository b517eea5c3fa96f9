/* prodset.c - product sets written all or nothing (rapid/prodset.h):
 * a hidden sibling directory, swapped in with one rename. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/prodset_test.h"
#include "rapid/prodset.h"
#include "rapid/tmpfiles.h"

#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

struct rapid_prodset {
    char dir[PATH_MAX];     /* the set's directory */
    char parent[PATH_MAX];  /* its parent ("." for a relative name) */
    char base[NAME_MAX + 1];
    char tmp[PATH_MAX];     /* .<base>.<pid>.tmp beside it: the new set */
    char old[PATH_MAX];     /* .<base>.<pid>.old: the earlier set, when no
                             * exchange is possible */
    int n;
    char **paths;           /* tmp/names[k] */
    int reg;                /* tmpfiles handle of tmp */
};

/* ------------------------------------------------------------- helpers */

/* A directory and what it holds, subdirectories too.  0 or an errno. */
static int remove_tree(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *e;
    char sub[PATH_MAX];
    int rc = 0;

    if (!d)
        return errno == ENOENT ? 0 : errno;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (unlinkat(dirfd(d), e->d_name, 0) == 0 || errno == ENOENT)
            continue;
        if ((errno == EISDIR || errno == EPERM) &&
            snprintf(sub, sizeof sub, "%s/%s", path, e->d_name) < (int)sizeof sub &&
            remove_tree(sub) == 0)
            continue;
        rc = errno ? errno : EIO;
    }
    closedir(d);
    if (rmdir(path) != 0 && errno != ENOENT && !rc)
        rc = errno;
    return rc;
}

static int sync_path(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc = 0;

    if (fd < 0 || fsync(fd) != 0)
        rc = errno ? errno : EIO;
    if (fd >= 0)
        close(fd);
    return rc;
}

int rapid_prodset_test_no_exchange = 0;

static int exchange(const char *a, const char *b)
{
    if (rapid_prodset_test_no_exchange) {
        errno = access(b, F_OK) == 0 ? EINVAL : ENOENT;
        return -1;
    }
#ifdef SYS_renameat2
    return (int)syscall(SYS_renameat2, AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE);
#else
    (void)a, (void)b;
    errno = ENOSYS;
    return -1;
#endif
}

/* name is ".<base>.<pid>.<suffix>" (suffix "tmp" or "old"): its pid, or
 * 0 if it is not such a name. */
static long temp_pid(const char *name, const char *base, const char *suffix)
{
    size_t nb = strlen(base), ns = strlen(suffix), n = strlen(name);
    const char *p, *end;
    long pid = 0;

    if (n < nb + ns + 4 || name[0] != '.' || strncmp(name + 1, base, nb) != 0 ||
        name[nb + 1] != '.' || name[n - ns - 1] != '.' ||
        strcmp(name + n - ns, suffix) != 0)
        return 0;
    end = name + n - ns - 1;
    for (p = name + nb + 2; p < end; p++) {
        if (*p < '0' || *p > '9' || pid > 100000000L)
            return 0;
        pid = pid * 10 + (*p - '0');
    }
    return pid;
}

static int process_gone(long pid)
{
    return pid != (long)getpid() && kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

/* The directory, its parent and its last component: trailing slashes
 * dropped, a symbolic link (or "." or "..") resolved. */
static int resolve(rapid_prodset *s, const char *dir, rapid_err *err)
{
    char buf[PATH_MAX];
    const char *slash;
    size_t n = strlen(dir);
    struct stat sb;

    while (n > 1 && dir[n - 1] == '/')
        n--;
    if (n == 0 || n >= sizeof buf)
        return rapid_fail(err, RAPID_E_ARG, "%s: not a usable directory name",
                          dir);
    memcpy(buf, dir, n);
    buf[n] = '\0';
    slash = strrchr(buf, '/');
    if (lstat(buf, &sb) == 0) {
        const char *last = slash ? slash + 1 : buf;
        if (S_ISLNK(sb.st_mode) || strcmp(last, ".") == 0 ||
            strcmp(last, "..") == 0) {
            if (!realpath(buf, s->dir))
                return rapid_fail(err, RAPID_E_IO, "%s: cannot resolve: %s",
                                  dir, strerror(errno));
        } else {
            memcpy(s->dir, buf, n + 1);
        }
        if (stat(s->dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
            return rapid_fail(err, RAPID_E_IO, "%s: not a directory", dir);
    } else if (errno == ENOENT) {
        memcpy(s->dir, buf, n + 1);
    } else {
        return rapid_fail(err, RAPID_E_IO, "%s: cannot look at it: %s", dir,
                          strerror(errno));
    }
    slash = strrchr(s->dir, '/');
    if (!slash) {
        strcpy(s->parent, ".");
    } else {
        size_t np = slash == s->dir ? 1 : (size_t)(slash - s->dir);
        memcpy(s->parent, s->dir, np);
        s->parent[np] = '\0';
    }
    if (strlen(slash ? slash + 1 : s->dir) >= sizeof s->base)
        return rapid_fail(err, RAPID_E_ARG, "%s: name too long", dir);
    strcpy(s->base, slash ? slash + 1 : s->dir);
    if (!s->base[0] || strcmp(s->base, ".") == 0 || strcmp(s->base, "..") == 0)
        return rapid_fail(err, RAPID_E_ARG, "%s: cannot be replaced as a "
                          "whole: name a directory of its own", dir);
    return 0;
}

/* ------------------------------------------------------------ cleaning */

static int clean(const char *dir, const char *parent, const char *base,
                 rapid_err *err)
{
    DIR *d = opendir(parent);
    struct dirent *e;
    char path[PATH_MAX];
    struct stat sb;

    if (!d)
        return errno == ENOENT ? 0 : rapid_fail(err, RAPID_E_IO,
                                                 "%s: cannot read: %s", parent,
                                                 strerror(errno));
    while ((e = readdir(d)) != NULL) {
        long pt = temp_pid(e->d_name, base, "tmp");
        long po = temp_pid(e->d_name, base, "old");
        if (!(pt > 0 && process_gone(pt)) && !(po > 0 && process_gone(po)))
            continue;
        if (snprintf(path, sizeof path, "%s/%s", parent, e->d_name) >=
            (int)sizeof path)
            continue;
        /* an earlier set renamed aside by a writer killed before it put
         * the new one in: back into place */
        if (po > 0 && stat(dir, &sb) != 0 && errno == ENOENT &&
            rename(path, dir) == 0)
            continue;
        remove_tree(path);
    }
    closedir(d);
    return 0;
}

int rapid_prodset_clean(const char *dir, rapid_err *err)
{
    rapid_prodset *s = calloc(1, sizeof *s);
    int rc;

    if (!s)
        return rapid_fail(err, RAPID_E_NOMEM, "%s: no memory", dir);
    if ((rc = resolve(s, dir, err)) == 0)
        rc = clean(s->dir, s->parent, s->base, err);
    free(s);
    return rc;
}

/* ------------------------------------------------------------- writing */

/* A file of the set, or a hidden temporary of one (".<name>.<pid>.<x>.tmp",
 * what a killed FITS writer of an older rapid left in the directory). */
static int set_member(const char *entry, const char *const *names, int n)
{
    int k;

    for (k = 0; k < n; k++) {
        size_t nk = strlen(names[k]), ne = strlen(entry);
        if (strcmp(entry, names[k]) == 0)
            return 1;
        if (entry[0] == '.' && ne > nk + 6 && strncmp(entry + 1, names[k], nk) == 0 &&
            entry[nk + 1] == '.' && strcmp(entry + ne - 4, ".tmp") == 0)
            return 1;
    }
    return 0;
}

/* The directory holds nothing but files of the set, or known ones (if it
 * exists). */
static int check_contents(const rapid_prodset *s, const char *const *names,
                          int n, const char *const *known, int nknown,
                          rapid_err *err)
{
    DIR *d = opendir(s->dir);
    struct dirent *e;
    struct stat sb;
    int rc = 0;

    if (!d)
        return errno == ENOENT ? 0 : rapid_fail(err, RAPID_E_IO,
                                                 "%s: cannot read: %s", s->dir,
                                                 strerror(errno));
    while (rc == 0 && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (!set_member(e->d_name, names, n) &&
            !(known && set_member(e->d_name, known, nknown)))
            rc = rapid_fail(err, RAPID_E_ARG, "%s/%s: not one of the products "
                            "(%s, ...): the directory is replaced as a whole, "
                            "so it must hold nothing else; remove it or write "
                            "to another directory", s->dir, e->d_name, names[0]);
        else if (fstatat(dirfd(d), e->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0 ||
                 !S_ISREG(sb.st_mode))
            rc = rapid_fail(err, RAPID_E_ARG, "%s/%s: not a regular file: the "
                            "directory is replaced as a whole, so it must hold "
                            "nothing else; remove it or write to another "
                            "directory", s->dir, e->d_name);
    }
    closedir(d);
    return rc;
}

static void prodset_free(rapid_prodset *s)
{
    int k;

    for (k = 0; s->paths && k < s->n; k++)
        free(s->paths[k]);
    free(s->paths);
    free(s);
}

static int make_paths(rapid_prodset *s, const char *const *names, int n,
                      rapid_err *err)
{
    int k;

    if (!(s->paths = calloc((size_t)n, sizeof *s->paths)))
        return rapid_fail(err, RAPID_E_NOMEM, "%s: no memory", s->dir);
    s->n = n;
    for (k = 0; k < n; k++) {
        size_t sz = strlen(s->tmp) + strlen(names[k]) + 2;
        if (!names[k][0] || strchr(names[k], '/'))
            return rapid_fail(err, RAPID_E_ARG, "%s: '%s' is not a file name",
                              s->dir, names[k]);
        if (!(s->paths[k] = malloc(sz)))
            return rapid_fail(err, RAPID_E_NOMEM, "%s: no memory", s->dir);
        snprintf(s->paths[k], sz, "%s/%s", s->tmp, names[k]);
    }
    return 0;
}

int rapid_prodset_begin(rapid_prodset **out, const char *dir,
                        const char *const *names, int n, rapid_err *err)
{
    return rapid_prodset_begin_among(out, dir, names, n, NULL, 0, err);
}

int rapid_prodset_begin_among(rapid_prodset **out, const char *dir,
                              const char *const *names, int n,
                              const char *const *known, int nknown,
                              rapid_err *err)
{
    rapid_prodset *s = NULL;
    struct stat sb;
    int rc = 0;

    *out = NULL;
    if (!dir || !names || n < 1)
        return rapid_fail(err, RAPID_E_ARG, "product set: no %s",
                          dir ? "files" : "directory");
    if (!(s = calloc(1, sizeof *s)))
        return rapid_fail(err, RAPID_E_NOMEM, "%s: no memory", dir);
    s->reg = -1;
    if ((rc = resolve(s, dir, err)) != 0 ||
        (rc = clean(s->dir, s->parent, s->base, err)) != 0 ||
        (rc = check_contents(s, names, n, known, nknown, err)) != 0)
        goto cleanup;
    if (snprintf(s->tmp, sizeof s->tmp, "%s/.%s.%ld.tmp", s->parent, s->base,
                 (long)getpid()) >= (int)sizeof s->tmp ||
        snprintf(s->old, sizeof s->old, "%s/.%s.%ld.old", s->parent, s->base,
                 (long)getpid()) >= (int)sizeof s->old) {
        rc = rapid_fail(err, RAPID_E_ARG, "%s: name too long", dir);
        goto cleanup;
    }
    if ((rc = make_paths(s, names, n, err)) != 0)
        goto cleanup;
    /* registered before it exists: a signal in between finds nothing */
    if ((s->reg = rapid_tmp_register(s->tmp, 1)) < 0) {
        rc = rapid_fail(err, RAPID_E_RANGE, "%s: more than %d temporaries at "
                        "once", s->tmp, RAPID_TMP_MAX);
        goto cleanup;
    }
    remove_tree(s->tmp); /* an earlier process's with our pid */
    if (mkdir(s->tmp, 0777) != 0) {
        rc = rapid_fail(err, RAPID_E_IO, "%s: cannot create directory %s: %s",
                        s->dir, s->tmp, strerror(errno));
        goto cleanup;
    }
    /* the new directory takes the place of the earlier: its permissions
     * too (best effort: the owner stays the writer) */
    if (stat(s->dir, &sb) == 0)
        chmod(s->tmp, sb.st_mode & 07777);
cleanup:
    if (rc) {
        if (s->reg >= 0)
            rapid_tmp_unregister(s->reg);
        prodset_free(s);
    } else {
        *out = s;
    }
    return rc;
}

const char *rapid_prodset_path(const rapid_prodset *s, int k)
{
    return s && k >= 0 && k < s->n ? s->paths[k] : NULL;
}

/* Without an exchange: the earlier set aside, the new one in, with the
 * signals that would clean up held back in between (they would find the
 * directory missing).  On success *aside names the earlier set. */
static int swap_in_two_steps(rapid_prodset *s, const char **aside,
                             rapid_err *err)
{
    sigset_t block, saved;
    int rc = 0, reg;

    if ((reg = rapid_tmp_register(s->old, 1)) < 0)
        return rapid_fail(err, RAPID_E_RANGE, "%s: more than %d temporaries "
                          "at once", s->old, RAPID_TMP_MAX);
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &block, &saved);
    if (rename(s->dir, s->old) != 0) {
        rc = rapid_fail(err, RAPID_E_IO, "%s: cannot move it aside to %s: %s",
                        s->dir, s->old, strerror(errno));
    } else if (rename(s->tmp, s->dir) != 0) {
        rc = rapid_fail(err, RAPID_E_IO, "%s: cannot move %s into place: %s",
                        s->dir, s->tmp, strerror(errno));
        rename(s->old, s->dir);
    }
    if (rc == 0) {
        *aside = s->old;
        rapid_tmp_unregister(s->reg);
        s->reg = reg;
    } else {
        rapid_tmp_unregister(reg);
    }
    pthread_sigmask(SIG_SETMASK, &saved, NULL);
    return rc;
}

int rapid_prodset_add(rapid_prodset *s, const char *name, rapid_err *err)
{
    char **paths;
    size_t sz;
    int k;

    if (!s || !name || !name[0] || strchr(name, '/'))
        return rapid_fail(err, RAPID_E_ARG, "%s: '%s' is not a plain file name",
                          s ? s->dir : "product set", name ? name : "");
    for (k = 0; k < s->n; k++)
        if (strcmp(strrchr(s->paths[k], '/') + 1, name) == 0)
            return rapid_fail(err, RAPID_E_ARG, "%s: %s is in the set already",
                              s->dir, name);
    if (!(paths = realloc(s->paths, (size_t)(s->n + 1) * sizeof *paths)))
        return rapid_fail(err, RAPID_E_NOMEM, "%s: no memory", s->dir);
    s->paths = paths;
    sz = strlen(s->tmp) + strlen(name) + 2;
    if (!(s->paths[s->n] = malloc(sz)))
        return rapid_fail(err, RAPID_E_NOMEM, "%s: no memory", s->dir);
    snprintf(s->paths[s->n], sz, "%s/%s", s->tmp, name);
    return s->n++;
}

int rapid_prodset_commit(rapid_prodset *s, rapid_err *err)
{
    const char *earlier = NULL;
    int k, e, rc = 0;

    if (!s)
        return rapid_fail(err, RAPID_E_ARG, "product set: none to commit");
    for (k = 0; k < s->n; k++)
        if (access(s->paths[k], F_OK) != 0) {
            rc = rapid_fail(err, RAPID_E_ARG, "%s: the new set is incomplete: "
                            "%s was not written", s->dir, s->paths[k]);
            goto cleanup;
        }
    /* the files (each flushed by its writer) and their names on disk
     * before the rename that makes them the set */
    if ((e = sync_path(s->tmp)) != 0) {
        rc = rapid_fail(err, RAPID_E_IO, "%s: cannot flush %s: %s", s->dir,
                        s->tmp, strerror(e));
        goto cleanup;
    }
    if (exchange(s->tmp, s->dir) == 0) {
        earlier = s->tmp;
    } else if (errno == ENOENT) {
        if (rename(s->tmp, s->dir) != 0)
            rc = rapid_fail(err, RAPID_E_IO, "%s: cannot move %s into place: %s",
                            s->dir, s->tmp, strerror(errno));
    } else if (errno == EINVAL || errno == ENOSYS || errno == ENOTSUP) {
        rc = swap_in_two_steps(s, &earlier, err);
    } else {
        rc = rapid_fail(err, RAPID_E_IO, "%s: cannot swap in %s: %s", s->dir,
                        s->tmp, strerror(errno));
    }
    if (rc)
        goto cleanup;
    /* The swap is done and visible: a parent that cannot be flushed
     * (some file systems refuse fsync on directories) only delays it on
     * disk, and is no reason to report the set as not written. */
    sync_path(s->parent);
    if (earlier)
        remove_tree(earlier);
cleanup:
    if (rc)
        remove_tree(s->tmp);
    rapid_tmp_unregister(s->reg);
    prodset_free(s);
    return rc;
}

void rapid_prodset_abort(rapid_prodset *s)
{
    if (!s)
        return;
    remove_tree(s->tmp);
    rapid_tmp_unregister(s->reg);
    prodset_free(s);
}
