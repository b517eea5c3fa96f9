/* rapid/md5.h - MD5 message digests (RFC 1321) of buffers and files.
 *
 * The operations database identifies every file by its MD5, as the existing
 * system does; MD5 is used here for identity, not for security.
 */
#ifndef RAPID_MD5_H
#define RAPID_MD5_H

#include <stddef.h>
#include <stdint.h>

#include "rapid/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rapid_md5 {
    uint32_t state[4];
    uint64_t nbytes;         /* message length so far */
    unsigned char buf[64];   /* a partial block */
} rapid_md5;

void rapid_md5_init(rapid_md5 *m);
void rapid_md5_update(rapid_md5 *m, const void *data, size_t n);
/* The 16-byte digest; m must be initialised again before reuse. */
void rapid_md5_final(rapid_md5 *m, unsigned char digest[16]);
/* The digest as 32 lower-case hex digits and a NUL. */
void rapid_md5_hex(const unsigned char digest[16], char hex[33]);
/* MD5 of the bytes of a file as stored (a gzipped file is not inflated),
 * in hex.  Errors name the file. */
int rapid_md5_file(const char *path, char hex[33], rapid_err *err);

#ifdef __cplusplus
}
#endif
#endif
