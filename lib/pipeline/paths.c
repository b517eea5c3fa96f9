/* paths.c - where a job's files are (rapid/pipeline.h). */
#include "rapid/pipeline.h"

#include <stdio.h>

int rapid_job_config_path(char *out, size_t outsz, const char *work,
                          int procdate, int64_t jid)
{
    int n = snprintf(out, outsz, "%s/jobs/%d/jid%lld.ini", work, procdate,
                     (long long)jid);
    return n < 0 || (size_t)n >= outsz ? -1 : 0;
}

int rapid_job_dir(char *out, size_t outsz, const char *work, int procdate,
                  int64_t jid)
{
    int n = snprintf(out, outsz, "%s/products/%d/jid%lld", work, procdate,
                     (long long)jid);
    return n < 0 || (size_t)n >= outsz ? -1 : 0;
}
