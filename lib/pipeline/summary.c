/* summary.c - a processing date's state: its jobs from the database, what
 * the registered ones made from their manifests. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "steps_internal.h"

static int pipe_index(int ppid)
{
    return ppid == RAPID_PPID_REFERENCE ? 0
           : ppid == RAPID_PPID_SCIENCE ? 1 : 2;
}

/* What an ended job made, from its manifest. */
static void count_products(rapid_steps *s, const rapid_job *j,
                           steps_manifest *m, rapid_steps_summary *sum)
{
    char dir[STEPS_PATH];
    rapid_err ignore = RAPID_ERR_INIT;
    int k;

    if (j->ppid == RAPID_PPID_POSTPROC)
        return;
    rapid_job_dir(dir, sizeof dir, s->work, s->procdate, j->jid);
    if (steps_read_manifest(dir, m, &ignore) != 0)
        return;
    if (j->ppid == RAPID_PPID_REFERENCE || strcmp(m->ref_source, "built") == 0)
        sum->refimages++;
    for (k = 0; k < m->ndiffs; k++)
        if (m->diffs[k].ok) {
            sum->diffimages++;
            sum->candidates += m->diffs[k].ncand;
            sum->passing += m->diffs[k].npass;
        }
}

int rapid_steps_summarize(rapid_steps *s, rapid_steps_summary *sum,
                          rapid_err *err)
{
    rapid_job *jobs = NULL;
    steps_manifest *m = NULL;
    int n = 0, i, p, rc;

    memset(sum, 0, sizeof *sum);
    if ((rc = rapid_db_jobs(s->db, s->procdate, 0, &jobs, &n, err)) != 0)
        return rc;
    if (!(m = malloc(sizeof *m))) {
        free(jobs);
        return rapid_fail(err, RAPID_E_NOMEM, "summary: out of memory");
    }
    for (i = 0; i < n; i++) {
        const rapid_job *j = &jobs[i];
        p = pipe_index(j->ppid);
        sum->njobs[p]++;
        if (j->status == 0) {
            sum->unended[p]++;
            continue;
        }
        sum->by_exit[p][j->exitcode < 0 ? 255
                        : j->exitcode > 255 ? 255 : j->exitcode]++;
        if (j->exitcode >= 32) {
            if (sum->nfailed < 64) {
                sum->failed[sum->nfailed].jid = j->jid;
                sum->failed[sum->nfailed].ppid = j->ppid;
                sum->failed[sum->nfailed].exitcode = j->exitcode;
            }
            sum->nfailed++;
        } else {
            count_products(s, j, m, sum);
        }
    }
    free(m);
    free(jobs);
    return 0;
}
