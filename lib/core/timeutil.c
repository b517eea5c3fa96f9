/* timeutil.c - calendar dates, ISO 8601 date-times and MJD.
 *
 * One parser reads the whole ISO form into its fields; the two entry points
 * differ only in what they require of it: rapid_mjd_from_iso a full time
 * with seconds (what a user types, "2028-09-07 00:00:00"), rapid_iso_parse_us
 * whatever the database and FITS headers may hold.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rapid/timeutil.h"

#define MS_PER_DAY 86400000LL

/* H. Hinnant's algorithms: eras of 400 years (146097 days) make every
 * proleptic Gregorian date exact, negative years included. */
int64_t rapid_days_from_civil(int64_t year, int month, int day)
{
    int64_t era, yoe, doy, doe, y = year - (month <= 2);

    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

void rapid_civil_from_days(int64_t days, int *year, int *month, int *day)
{
    int64_t z = days + 719468, era, doe, yoe, doy, mp;

    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = z - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    *day = (int)(doy - (153 * mp + 2) / 5 + 1);
    *month = (int)(mp < 10 ? mp + 3 : mp - 9);
    *year = (int)(yoe + era * 400 + (*month <= 2));
}

int rapid_days_in_month(int64_t year, int month)
{
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;

    if (month < 1 || month > 12)
        return 0;
    return mdays[month - 1] + (month == 2 && leap);
}

/* ------------------------------------------------------------ parsing */

typedef struct iso_time {
    int year, month, day, hour, minute, second;
    int usec;             /* the fraction, microseconds (up to 1000000) */
    const char *sec_text; /* the seconds with their fraction, or NULL */
    int has_time, zone;   /* a time of day was given; a trailing Z */
} iso_time;

/* Exactly n decimal digits. */
static int digits(const char **s, int n, int *out)
{
    int v = 0, i;

    for (i = 0; i < n; i++, (*s)++) {
        if (**s < '0' || **s > '9')
            return RAPID_E_ARG;
        v = 10 * v + (**s - '0');
    }
    *out = v;
    return 0;
}

/* The digits after the decimal point as microseconds, rounded on the
 * seventh digit (further digits cannot move a correctly rounded value). */
static const char *parse_fraction(const char **s, iso_time *t)
{
    int nd = 0, up = 0;

    for (; **s >= '0' && **s <= '9'; (*s)++, nd++)
        if (nd < 6)
            t->usec = 10 * t->usec + (**s - '0');
        else if (nd == 6)
            up = **s >= '5';
    if (nd == 0)
        return "no digits after the decimal point";
    for (; nd < 6; nd++)
        t->usec *= 10;
    t->usec += up;
    return NULL;
}

/* "hh:mm[:ss[.f...]]"; the reason if it is not that. */
static const char *parse_clock(const char **s, iso_time *t)
{
    if (digits(s, 2, &t->hour) || *(*s)++ != ':' || digits(s, 2, &t->minute))
        return "expected hh:mm after the date";
    if (t->hour > 23)
        return "hour out of range (00 .. 23)";
    if (t->minute > 59)
        return "minute out of range (00 .. 59)";
    if (**s != ':')
        return NULL;
    t->sec_text = ++(*s);
    if (digits(s, 2, &t->second))
        return "expected two digits of seconds";
    if (t->second > 60)
        return "second out of range";
    if (**s != '.')
        return NULL;
    (*s)++;
    return parse_fraction(s, t);
}

/* "YYYY-MM-DD[(T| )hh:mm[:ss[.f...]]][Z]" into t; the reason if it is not
 * that, or names a day that does not exist. */
static const char *parse_iso(const char *s, iso_time *t)
{
    const char *why;

    memset(t, 0, sizeof *t);
    if (digits(&s, 4, &t->year) || *s++ != '-' || digits(&s, 2, &t->month) ||
        *s++ != '-' || digits(&s, 2, &t->day))
        return "expected YYYY-MM-DD";
    if (t->month < 1 || t->month > 12)
        return "month out of range (01 .. 12)";
    if (t->day < 1 || t->day > rapid_days_in_month(t->year, t->month))
        return "no such day in that month";
    if (*s == 'T' || *s == ' ') {
        s++;
        t->has_time = 1;
        if ((why = parse_clock(&s, t)) != NULL)
            return why;
    }
    if (*s == 'Z') {
        s++;
        t->zone = 1;
    }
    return *s ? "unexpected characters after it" : NULL;
}

int rapid_mjd_from_iso(const char *s, double *mjd, rapid_err *err)
{
    const char *why;
    iso_time t;
    double sec = 0;

    if (!s)
        return rapid_fail(err, RAPID_E_ARG, "no date-time given (NULL)");
    why = parse_iso(s, &t);
    if (!why && (!t.has_time || !t.sec_text || t.zone))
        why = "expected YYYY-MM-DDThh:mm:ss[.f]";
    /* strtod reads the seconds text exactly as typed: the MJD keeps digits
     * beyond the microseconds. */
    if (!why && !((sec = strtod(t.sec_text, NULL)) < 60))
        why = "second out of range (00 .. 59)";
    if (why)
        return rapid_fail(err, RAPID_E_ARG,
                          "'%s' is not a date-time YYYY-MM-DDThh:mm:ss[.f] "
                          "(UTC): %s", s, why);
    *mjd = (double)(rapid_days_from_civil(t.year, t.month, t.day) +
                    RAPID_MJD_1970) +
           (t.hour * 3600.0 + t.minute * 60.0 + sec) / 86400.0;
    return 0;
}

int rapid_iso_parse_us(const char *s, int64_t *us, rapid_err *err)
{
    const char *why;
    iso_time t;
    int64_t days;

    if (!s)
        return rapid_fail(err, RAPID_E_ARG, "no date-time given (NULL)");
    if ((why = parse_iso(s, &t)) != NULL)
        return rapid_fail(err, RAPID_E_ARG,
                          "'%s' is not a date-time "
                          "YYYY-MM-DD[Thh:mm[:ss[.f]]][Z]: %s", s, why);
    days = rapid_days_from_civil(t.year, t.month, t.day);
    *us = ((days * 24 + t.hour) * 60 + t.minute) * 60 * INT64_C(1000000) +
          (int64_t)t.second * 1000000 + t.usec;
    return 0;
}

/* ---------------------------------------------------------- formatting */

void rapid_iso_from_mjd(double mjd, char *out, size_t outsz)
{
    long long ms, day, rem;
    int y, m, d;

    if (outsz == 0)
        return;
    if (!(fabs(mjd) <= 1e9)) { /* llround would overflow, or NaN */
        out[0] = '\0';
        return;
    }
    /* Rounding the whole count of milliseconds first carries 59.9996 s
     * into the minute, the hour and the day alike. */
    ms = llround(mjd * (double)MS_PER_DAY);
    day = ms / MS_PER_DAY;
    rem = ms - day * MS_PER_DAY;
    if (rem < 0) {
        rem += MS_PER_DAY;
        day--;
    }
    rapid_civil_from_days(day - RAPID_MJD_1970, &y, &m, &d);
    snprintf(out, outsz, "%04d-%02d-%02dT%02lld:%02lld:%02lld.%03lld", y, m, d,
             rem / 3600000, rem / 60000 % 60, rem / 1000 % 60, rem % 1000);
}
