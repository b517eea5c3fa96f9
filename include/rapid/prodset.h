/* rapid/prodset.h - product sets written all or nothing.
 *
 * A product set is a directory that holds the files of one product and
 * nothing else: the reference image of a tile with its coverage,
 * uncertainty, PSF and catalog (rapid_coadd_write); the difference images
 * to come.  The contract, at every moment and whatever happens to the
 * writer (an error, SIGINT, SIGTERM, even SIGKILL or a crash): the
 * directory holds either the complete earlier set or the complete new set,
 * never a mix, never a part.
 *
 * How: the new set is written into a hidden sibling, <parent>/.<name>.<pid>.tmp,
 * flushed to disk, and swapped with the directory in one rename
 * (renameat2 RENAME_EXCHANGE); the earlier set, now under the hidden name,
 * is then removed.  A directory that does not exist yet is created by
 * renaming the sibling to it.  On a file system without the exchange (it
 * returns EINVAL, e.g. NFS) the directory is first renamed aside to
 * .<name>.<pid>.old and the new set renamed in: between the two renames
 * the directory does not exist, and a writer killed there leaves the
 * earlier set under .old, which the next writer renames back.
 *
 * Temporaries: the hidden sibling is registered with rapid/tmpfiles.h, so
 * a program whose signal handler calls rapid_tmp_remove_all leaves none
 * after SIGINT or SIGTERM.  Those of a writer that was killed outright
 * carry its pid; rapid_prodset_begin (and rapid_prodset_clean) remove the
 * ones of the same directory whose process no longer exists (kill(pid, 0);
 * a writer in another pid namespace sharing the directory would look dead).
 *
 * The directory must hold only files of the set: rapid_prodset_begin
 * refuses one that holds anything else (or a subdirectory), rather than
 * delete it with the earlier set.  Two writers of the same directory at
 * once are not supported (the last swap wins; each set stays whole).
 */
#ifndef RAPID_PRODSET_H
#define RAPID_PRODSET_H

#include "rapid/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rapid_prodset rapid_prodset;

/* Start a new set for directory dir (created by the commit if it does not
 * exist; its parent must exist; a symbolic link is followed) whose files
 * are names[0..n-1] (plain names, no '/').  Removes what killed writers of
 * dir left, checks that dir holds nothing but files of those names (or
 * hidden temporaries of them left by older versions of rapid), and creates
 * the hidden sibling.  *out is owned by the caller until commit or abort. */
int rapid_prodset_begin(rapid_prodset **out, const char *dir,
                        const char *const *names, int n, rapid_err *err);

/* The same for a set whose files vary from one write to the next (the
 * difference images of the methods that succeeded): the directory may
 * also hold files named in known[0..nknown-1] (names of an earlier set of
 * the same kind), which go with the earlier set.  Anything else is still
 * refused.  known may be NULL (nknown 0): rapid_prodset_begin. */
int rapid_prodset_begin_among(rapid_prodset **out, const char *dir,
                              const char *const *names, int n,
                              const char *const *known, int nknown,
                              rapid_err *err);

/* Where to write file k of the set (names[k] in the hidden sibling); the
 * string lives as long as the set. */
const char *rapid_prodset_path(const rapid_prodset *s, int k);

/* Add file name (a plain name, not yet in the set) to a set begun, for a
 * writer that learns its products' names as it goes (the science job):
 * its index for rapid_prodset_path, or a negative status.  The directory's
 * earlier contents were checked against the names given to begin only:
 * such a writer empties the directory of its earlier set first. */
int rapid_prodset_add(rapid_prodset *s, const char *name, rapid_err *err);

/* Put the new set in place: every file must have been written.  The
 * earlier set is removed.  Frees s, also on failure (after which the
 * directory holds the earlier set and no temporaries). */
int rapid_prodset_commit(rapid_prodset *s, rapid_err *err);

/* Throw the new set away; the directory keeps the earlier set.  Frees s;
 * NULL is allowed. */
void rapid_prodset_abort(rapid_prodset *s);

/* Remove the temporaries that writers of dir which no longer run left
 * beside it, and put back an earlier set that one of them had renamed
 * aside.  0, or a negative status if the parent cannot be read. */
int rapid_prodset_clean(const char *dir, rapid_err *err);

#ifdef __cplusplus
}
#endif
#endif
