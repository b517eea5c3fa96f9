/* cmd_tile.c - being written */
#include "cli.h"
int cmd_tile(int argc, char **argv) { (void)argc; (void)argv; return 1; }
