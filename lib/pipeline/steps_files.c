/* steps_files.c - directories, configuration files written whole, the
 * executor's lock: what every step uses. */
#define _GNU_SOURCE /* syncfs */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "steps_internal.h"

void rapid_steps_init(rapid_steps *s)
{
    memset(s, 0, sizeof *s);
    rapid_steps_settings_init(&s->set);
}

int steps_mkdirs(const char *path, rapid_err *err)
{
    char buf[STEPS_PATH], *p;

    if (strlen(path) >= sizeof buf)
        return rapid_fail(err, RAPID_E_ARG, "%.100s...: path too long", path);
    snprintf(buf, sizeof buf, "%s", path);
    for (p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0777) != 0 && errno != EEXIST)
            return rapid_fail(err, RAPID_E_IO, "%s: cannot create: %s", buf,
                              strerror(errno));
        *p = '/';
    }
    if (mkdir(buf, 0777) != 0 && errno != EEXIST)
        return rapid_fail(err, RAPID_E_IO, "%s: cannot create: %s", buf,
                          strerror(errno));
    return 0;
}

static int write_file(const char *path, const char *text, int sync,
                      rapid_err *err)
{
    char tmp[STEPS_PATH + 16];
    size_t n = strlen(text);
    int fd, ok;

    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        return rapid_fail(err, RAPID_E_ARG, "%s: path too long", path);
    if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666)) < 0)
        return rapid_fail(err, RAPID_E_IO, "%s: cannot create: %s", tmp,
                          strerror(errno));
    ok = write(fd, text, n) == (ssize_t)n && (!sync || fsync(fd) == 0);
    if (close(fd) != 0)
        ok = 0;
    if (!ok || rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return rapid_fail(err, RAPID_E_IO, "%s: cannot write: %s", path,
                          strerror(e));
    }
    return 0;
}

int steps_write_file(const char *path, const char *text, rapid_err *err)
{
    return write_file(path, text, 1, err);
}

int steps_write_file_unsynced(const char *path, const char *text,
                              rapid_err *err)
{
    return write_file(path, text, 0, err);
}

int steps_sync_work(const rapid_steps *s, rapid_err *err)
{
    int fd = open(s->work, O_RDONLY | O_DIRECTORY | O_CLOEXEC), ok;

    if (fd < 0 && errno == ENOENT)
        return 0; /* nothing was written there */
    if (fd < 0)
        return rapid_fail(err, RAPID_E_IO, "%s: cannot open: %s", s->work,
                          strerror(errno));
    ok = syncfs(fd) == 0;
    close(fd);
    if (!ok)
        return rapid_fail(err, RAPID_E_IO, "%s: cannot write to disk: %s",
                          s->work, strerror(errno));
    return 0;
}

void steps_printf(steps_text *t, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (t->nomem)
        return;
    for (;;) {
        size_t room = t->cap - t->n;
        va_start(ap, fmt);
        n = vsnprintf(t->s ? t->s + t->n : NULL, t->s ? room : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            t->nomem = 1;
            return;
        }
        if (t->s && (size_t)n < room) {
            t->n += (size_t)n;
            return;
        }
        {
            size_t cap = 2 * (t->n + (size_t)n + 1) + 256;
            char *grown = realloc(t->s, cap);
            if (!grown) {
                t->nomem = 1;
                return;
            }
            t->s = grown, t->cap = cap;
        }
    }
}

void steps_text_free(steps_text *t)
{
    free(t->s);
    memset(t, 0, sizeof *t);
}

void steps_config_settings(steps_text *t, const rapid_steps_settings *set)
{
    int i;

    steps_printf(t, "\n[diff]\nmethods = %s\nsfft_order = %d\n"
                 "kernel_half_width = %d\n", set->methods, set->sfft_order,
                 set->kernel_half_width);
    steps_printf(t, "\n[cuts]\n");
    for (i = 0; i < set->ncuts; i++)
        steps_printf(t, "%s = %s\n", set->cut_key[i], set->cut_value[i]);
}

int steps_lock_path(char *out, size_t outsz, const rapid_steps *s)
{
    int n = snprintf(out, outsz, "%s/jobs/%d/executor.lock", s->work,
                     s->procdate);
    return n < 0 || (size_t)n >= outsz ? -1 : 0;
}

int steps_jobs_running(const rapid_steps *s)
{
    char path[STEPS_PATH];
    int fd, held;

    if (steps_lock_path(path, sizeof path, s) != 0 ||
        (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return 0;
    held = flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
    close(fd);
    return held;
}

void steps_say(const rapid_steps *s, const char *fmt, ...)
{
    va_list ap;

    if (!s->msg)
        return;
    va_start(ap, fmt);
    vfprintf(s->msg, fmt, ap);
    va_end(ap);
    fputc('\n', s->msg);
    fflush(s->msg);
}

int steps_clear_job(const rapid_steps *s, int64_t jid, rapid_err *err)
{
    static const char *const names[] = {RAPID_JOB_LOG, RAPID_JOB_MANIFEST};
    char dir[STEPS_PATH], path[STEPS_PATH + 32];
    int k;

    if (rapid_job_dir(dir, sizeof dir, s->work, s->procdate, jid) != 0)
        return rapid_fail(err, RAPID_E_ARG, "%s: path too long", s->work);
    for (k = 0; k < 2; k++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[k]);
        if (unlink(path) != 0 && errno != ENOENT)
            return rapid_fail(err, RAPID_E_IO, "%s: cannot remove: %s", path,
                              strerror(errno));
    }
    return 0;
}
