/* rapid.c - the `rapid` command: dispatch to a subcommand. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "rapid/version.h"

static const rapid_cmd commands[] = {
    {"coadd", cmd_coadd, "Make the reference image of a sky tile from L2 images"},
    {"db", cmd_db, "Operations database: create or upgrade the schema"},
    {"diff", cmd_diff, "Subtract the reference from a science image (ZOGY, naive)"},
    {"eval", cmd_eval, "Injected-source recovery: completeness, false positives, figure of merit"},
    {"extract", cmd_extract, "Candidates of a difference image: detection, PSF fits, vetting"},
    {"ingest", cmd_ingest, "Register L2 images (files or directories) in the database"},
    {"ingest-psf", cmd_ingest_psf, "Register PSF files in the database"},
    {"job", cmd_job, "Run a science or reference job from its configuration"},
    {"launch", cmd_launch, "Step 1: start the science and reference jobs of a time range"},
    {"postproc", cmd_postproc, "Step 3: start the post-processing jobs of a date"},
    {"postproc-job", cmd_postproc_job, "Run a post-processing job from its configuration"},
    {"register", cmd_register, "Step 2: register the jobs of a date, each once"},
    {"register-postproc", cmd_register_postproc, "Step 4: register the post-processing jobs of a date"},
    {"run", cmd_run, "The four steps in order, jobs run here, and a summary"},
    {"sim", cmd_sim, "Simulate a Roman WFI survey: L2 images, PSFs and truth"},
    {"status", cmd_status, "Jobs and products of a processing date"},
    {"tile", cmd_tile, "Sky tessellation: tile of a position, neighbours, export"},
    {"version", cmd_version, "Print the version and the git commit"},
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *out)
{
    size_t i;

    fprintf(out,
            "usage: rapid <command> [options] [args]\n"
            "       rapid <command> --help\n"
            "\n"
            "RAPID image differencing for the Roman Space Telescope.\n"
            "\n"
            "Commands:\n");
    for (i = 0; i < NCOMMANDS; i++)
        fprintf(out, "  %-17s %s\n", commands[i].name, commands[i].summary);
    fprintf(out,
            "\n"
            "Options take their value as --opt VALUE or --opt=VALUE; \"--\" ends\n"
            "the options.  Messages go to stderr, data to stdout.\n"
            "\n"
            "Exit status: 0 success, 1 failure of the work, 2 bad usage (and 33\n"
            "from rapid coadd: too few usable images; 4 from rapid diff: one\n"
            "method failed, another worked); see docs/exit-codes.md.\n");
}

int main(int argc, char **argv)
{
    size_t i;

    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0)
        return cmd_version(1, argv + 1);
    for (i = 0; i < NCOMMANDS; i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "rapid: '%s' is not a rapid command; see 'rapid --help'\n",
            argv[1]);
    return EXIT_USAGE;
}
