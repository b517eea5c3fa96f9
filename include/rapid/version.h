/* rapid/version.h - the library's version and the commit it was built from. */
#ifndef RAPID_VERSION_H
#define RAPID_VERSION_H

#ifdef __cplusplus
extern "C" {
#endif

#define RAPID_VERSION_MAJOR 0
#define RAPID_VERSION_MINOR 1
#define RAPID_VERSION_PATCH 0

/* "0.1.0" */
const char *rapid_version(void);
/* `git describe --always --dirty` at build time, or "unknown". */
const char *rapid_git_commit(void);

#ifdef __cplusplus
}
#endif
#endif
