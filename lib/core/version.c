/* version.c - version strings. */
#include "rapid/version.h"

#define STR_(x) #x
#define STR(x) STR_(x)

extern const char *rapid_git_commit_string;

const char *rapid_version(void)
{
    return STR(RAPID_VERSION_MAJOR) "." STR(RAPID_VERSION_MINOR) "." STR(
        RAPID_VERSION_PATCH);
}

const char *rapid_git_commit(void)
{
    return rapid_git_commit_string;
}
