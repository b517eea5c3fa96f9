/* eval_internal.h - what the evaluation's files share (not public). */
#ifndef RAPID_EVAL_INTERNAL_H
#define RAPID_EVAL_INTERNAL_H

#include "rapid/fits.h"

/* A numeric column's value in row k as a double (NaN for text). */
double eval_colval(const rapid_column *c, long k);

#endif
