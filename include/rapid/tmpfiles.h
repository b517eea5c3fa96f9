/* rapid/tmpfiles.h - temporaries that a signal must not leave behind.
 *
 * While it writes a product set (rapid/prodset.h) the library registers the
 * temporary directory it writes into, and unregisters it once the set is
 * in place or thrown away.  A program that wants no temporaries left when
 * it is interrupted installs a handler for SIGINT, SIGTERM (and SIGHUP)
 * that calls rapid_tmp_remove_all() and then dies of the signal; the rapid
 * command does.  A process killed with SIGKILL cannot clean up: the names
 * carry the writer's pid, and the next writer of the same product set
 * removes them once that process is gone (rapid_prodset_begin).
 *
 * Global state: the registry is one process-wide table of RAPID_TMP_MAX
 * entries.  Registering and unregistering take a mutex; the remover takes
 * no lock and calls only async-signal-safe functions.
 */
#ifndef RAPID_TMPFILES_H
#define RAPID_TMPFILES_H

#ifdef __cplusplus
extern "C" {
#endif

#define RAPID_TMP_MAX 16        /* temporaries registered at once */
#define RAPID_TMP_PATH_MAX 4096 /* bytes of a registered path, NUL included */

/* Register path (a file, or a directory of files without subdirectories,
 * is_dir 1) for removal by rapid_tmp_remove_all.  The path is copied.
 * Returns a handle >= 0, or RAPID_E_RANGE if the table is full or the
 * path too long. */
int rapid_tmp_register(const char *path, int is_dir);

/* Forget a registration (the temporary was renamed or removed); a negative
 * handle is ignored. */
void rapid_tmp_unregister(int handle);

/* Remove every registered temporary (a directory with the files in it).
 * Async-signal-safe: for signal handlers. */
void rapid_tmp_remove_all(void);

#ifdef __cplusplus
}
#endif
#endif
