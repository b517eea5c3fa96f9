/* cmd_version.c - `rapid version`. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "rapid/version.h"

int cmd_version(int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        printf("usage: rapid version\n\n"
               "Print the version of rapid and the git commit it was built from.\n");
        return 0;
    }
    if (argc > 1)
        return cli_usage("version", "unexpected argument '%s'", argv[1]);
    printf("rapid %s (commit %s)\n", rapid_version(), rapid_git_commit());
    return 0;
}
