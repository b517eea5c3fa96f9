/* cmd_version.c - `rapid version`. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "rapid/version.h"

static const cli_option options[] = {
    {NULL, NULL, 0, 0},
};

int cmd_version(int argc, char **argv)
{
    cli_parser p;
    int id;

    if (cli_wants_help(argc, argv)) {
        printf("usage: rapid version\n\n"
               "Print the version of rapid and the git commit it was built "
               "from.\n\n"
               "Exit status: 0 printed, 2 bad usage (any argument).\n");
        return 0;
    }
    cli_parser_init(&p, "version", options, argc, argv);
    if ((id = cli_next(&p)) == CLI_OPERAND)
        return cli_usage("version", "unexpected argument '%s'", p.value);
    if (id != CLI_END)
        return EXIT_USAGE;
    printf("rapid %s (commit %s)\n", rapid_version(), rapid_git_commit());
    return 0;
}
