/* tmpfiles.c - the registry of temporaries removed on a signal.
 *
 * A slot's path is written while the slot is not yet marked in use and
 * the mark is an atomic store after it, so a handler that interrupts a
 * registration sees either nothing or the whole path.  Directory entries
 * are read with getdents64 into a buffer on the handler's stack: opendir
 * would allocate, which a signal handler must not. */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "rapid/error.h"
#include "rapid/tmpfiles.h"

typedef struct slot {
    atomic_int used;   /* 0 free, 1 file, 2 directory */
    char path[RAPID_TMP_PATH_MAX];
} slot;

static slot slots[RAPID_TMP_MAX];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

int rapid_tmp_register(const char *path, int is_dir)
{
    size_t n = path ? strlen(path) : 0;
    int i, h = RAPID_E_RANGE;

    if (n == 0 || n >= RAPID_TMP_PATH_MAX)
        return RAPID_E_RANGE;
    pthread_mutex_lock(&lock);
    for (i = 0; i < RAPID_TMP_MAX; i++)
        if (atomic_load(&slots[i].used) == 0) {
            memcpy(slots[i].path, path, n + 1);
            atomic_store(&slots[i].used, is_dir ? 2 : 1);
            h = i;
            break;
        }
    pthread_mutex_unlock(&lock);
    return h;
}

void rapid_tmp_unregister(int handle)
{
    if (handle < 0 || handle >= RAPID_TMP_MAX)
        return;
    pthread_mutex_lock(&lock);
    atomic_store(&slots[handle].used, 0);
    pthread_mutex_unlock(&lock);
}

/* The files of a directory, then the directory.  Async-signal-safe. */
static void remove_dir(const char *path)
{
    struct linux_dirent64 {
        uint64_t ino;
        int64_t off;
        unsigned short reclen;
        unsigned char type;
        char name[];
    };
    char buf[4096] __attribute__((aligned(8)));
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC), pass, removed = 1;
    long n;

    if (fd < 0)
        return;
    /* again from the start while a pass removed something: entries
     * removed during a read may move others past the read position */
    for (pass = 0; pass < 8 && removed; pass++) {
        removed = 0;
        lseek(fd, 0, SEEK_SET);
        while ((n = syscall(SYS_getdents64, fd, buf, sizeof buf)) > 0) {
            long off = 0;
            while (off < n) {
                struct linux_dirent64 *d = (struct linux_dirent64 *)(buf + off);
                const char *s = d->name;
                if (!(s[0] == '.' && (s[1] == '\0' || (s[1] == '.' && s[2] == '\0'))) &&
                    unlinkat(fd, s, 0) == 0)
                    removed = 1;
                off += d->reclen;
            }
        }
    }
    close(fd);
    rmdir(path);
}

void rapid_tmp_remove_all(void)
{
    int i;

    for (i = 0; i < RAPID_TMP_MAX; i++) {
        int kind = atomic_load(&slots[i].used);
        if (kind == 1)
            unlink(slots[i].path);
        else if (kind == 2)
            remove_dir(slots[i].path);
    }
}
