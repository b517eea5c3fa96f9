/* rapid/timeutil.h - calendar dates, ISO 8601 date-times and MJD.
 *
 * Dates are proleptic Gregorian, times UTC without leap seconds: every day
 * has 86400 s.  Day numbers count from 1970-01-01 (day 0, MJD 40587); MJD 0
 * is 1858-11-17T00:00:00.  The conversions are exact integer arithmetic
 * (H. Hinnant's algorithms) for every date a 64-bit day number holds.
 */
#ifndef RAPID_TIMEUTIL_H
#define RAPID_TIMEUTIL_H

#include <stddef.h>
#include <stdint.h>

#include "rapid/error.h"

#ifdef __cplusplus
extern "C" {
#endif

#define RAPID_MJD_1970 40587 /* MJD of 1970-01-01T00:00:00 */

/* "YYYY-MM-DDTHH:MM:SS.sss" and its NUL: the size rapid_iso_from_mjd
 * needs for years 0 .. 9999. */
#define RAPID_ISO_MAX 24

/* Day number (days since 1970-01-01) of year-month-day; month 1 .. 12 and
 * day 1 .. 31 (not checked: rapid_days_in_month says what is valid). */
int64_t rapid_days_from_civil(int64_t year, int month, int day);
/* The date of a day number. */
void rapid_civil_from_days(int64_t days, int *year, int *month, int *day);
/* Days in month 1 .. 12 of year (29 for February of a leap year); 0 for a
 * month out of range. */
int rapid_days_in_month(int64_t year, int month);

/* "YYYY-MM-DDThh:mm:ss[.f...]" (a space may stand for the T; any number of
 * fraction digits) as an MJD.  Every field has exactly its digits, the day
 * must exist in its month and year, hour 0 .. 23, minute 0 .. 59, second
 * below 60.  RAPID_E_ARG, with the reason in err and *mjd unchanged, if s
 * is not such a date-time. */
int rapid_mjd_from_iso(const char *s, double *mjd, rapid_err *err);

/* MJD as "YYYY-MM-DDTHH:MM:SS.sss", rounded to the nearest millisecond
 * (23:59:59.9996 is 00:00:00.000 of the next day).  out is always
 * terminated, cut at outsz - 1 characters (RAPID_ISO_MAX holds it all);
 * an MJD that is not finite or beyond +-1e9 days gives "". */
void rapid_iso_from_mjd(double mjd, char *out, size_t outsz);

/* The looser form of the database and FITS headers,
 * "YYYY-MM-DD[(T| )hh:mm[:ss[.f...]]][Z]", as microseconds since
 * 1970-01-01: a missing time is midnight, missing seconds are 0, second 60
 * (a leap second) counts as the next minute's first, and the fraction is
 * rounded to the microsecond on its 7th digit.  RAPID_E_ARG, with the
 * reason in err and *us unchanged, if s is not of that form. */
int rapid_iso_parse_us(const char *s, int64_t *us, rapid_err *err);

#ifdef __cplusplus
}
#endif

#endif
