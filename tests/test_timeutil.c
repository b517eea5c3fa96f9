/* test_timeutil.c - calendar dates, ISO date-times and MJD: known values,
 * leap days, invalid input, rounding at the boundaries, round trips. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "rapid/timeutil.h"
#include "testutil.h"

static double mjd_of(const char *s)
{
    rapid_err err = RAPID_ERR_INIT;
    double mjd = -1e300;

    if (rapid_mjd_from_iso(s, &mjd, &err))
        fail_msg("%s: %s", s, err.msg);
    return mjd;
}

static const char *iso_of(double mjd)
{
    static char buf[RAPID_ISO_MAX];

    rapid_iso_from_mjd(mjd, buf, sizeof buf);
    return buf;
}

/* MJD 0 and 51544.5 by definition; 62021 is the simulator's default start,
 * counted by hand: 2028-01-01 is MJD 61771, and 2028-09-07 is 250 days on
 * (2028 is a leap year). */
static void test_known_values(void **state)
{
    (void)state;
    assert_true(mjd_of("1858-11-17 00:00:00") == 0.0);
    assert_true(mjd_of("2000-01-01T12:00:00") == 51544.5);
    assert_true(mjd_of("1970-01-01T00:00:00") == RAPID_MJD_1970);
    assert_true(mjd_of("2028-09-07 00:00:00") == 62021.0);
    assert_true(mjd_of("1858-11-16T12:00:00") == -0.5);
    assert_true(mjd_of("2000-01-01T00:00:00.5") == 51544.0 + 0.5 / 86400.0);
    assert_true(mjd_of("2000-01-01 06:00:00.000") == 51544.25);
    assert_string_equal(iso_of(0.0), "1858-11-17T00:00:00.000");
    assert_string_equal(iso_of(51544.5), "2000-01-01T12:00:00.000");
    assert_string_equal(iso_of(62021.0), "2028-09-07T00:00:00.000");
    assert_string_equal(iso_of(-0.5), "1858-11-16T12:00:00.000");
    assert_string_equal(iso_of(51544.0 + 1.25 / 86400), "2000-01-01T00:00:01.250");
    assert_int_equal(rapid_days_from_civil(1970, 1, 1), 0);
    assert_int_equal(rapid_days_from_civil(1858, 11, 17), -RAPID_MJD_1970);
    assert_int_equal(rapid_days_from_civil(2000, 1, 1), 10957);
    assert_int_equal(rapid_days_from_civil(1969, 12, 31), -1);
}

static void test_leap_days(void **state)
{
    double mjd = 0;
    int y, m, d;

    (void)state;
    assert_true(mjd_of("2000-02-29 00:00:00") == 51603.0);
    assert_true(mjd_of("2024-02-29T12:00:00") - mjd_of("2024-02-28T12:00:00") == 1);
    assert_true(mjd_of("1600-02-29 00:00:00") ==
                rapid_days_from_civil(1600, 2, 29) + RAPID_MJD_1970);
    assert_int_equal(rapid_mjd_from_iso("1900-02-29 00:00:00", &mjd, NULL),
                     RAPID_E_ARG);
    assert_int_equal(rapid_mjd_from_iso("2100-02-29 00:00:00", &mjd, NULL),
                     RAPID_E_ARG);
    assert_int_equal(rapid_mjd_from_iso("2023-02-29 00:00:00", &mjd, NULL),
                     RAPID_E_ARG);
    assert_int_equal(rapid_days_in_month(2000, 2), 29);
    assert_int_equal(rapid_days_in_month(1900, 2), 28);
    assert_int_equal(rapid_days_in_month(2024, 2), 29);
    assert_int_equal(rapid_days_in_month(2023, 2), 28);
    assert_int_equal(rapid_days_in_month(2023, 4), 30);
    assert_int_equal(rapid_days_in_month(2023, 12), 31);
    assert_int_equal(rapid_days_in_month(2023, 0), 0);
    assert_int_equal(rapid_days_in_month(2023, 13), 0);
    /* 1900 is not a leap year, 2000 is */
    assert_int_equal(rapid_days_from_civil(1900, 3, 1) -
                     rapid_days_from_civil(1900, 2, 28), 1);
    assert_int_equal(rapid_days_from_civil(2000, 3, 1) -
                     rapid_days_from_civil(2000, 2, 28), 2);
    rapid_civil_from_days(rapid_days_from_civil(2024, 2, 29) + 1, &y, &m, &d);
    assert_true(y == 2024 && m == 3 && d == 1);
    assert_string_equal(iso_of(mjd_of("2000-02-28T23:59:59.9996")),
                        "2000-02-29T00:00:00.000");
}

/* Each is refused, *mjd is left alone, and the message names the input. */
static void test_invalid(void **state)
{
    static const char *const bad[] = {
        "", "yesterday", "2023-13-01 00:00:00", "2023-00-10 00:00:00",
        "2023-04-31 00:00:00", "2023-01-00 00:00:00", "2023-01-01 24:00:00",
        "2023-01-01 23:60:00", "2023-01-01 23:59:60", "2023-01-01 23:59:61",
        "2023-01-01X00:00:00", "2023-01-01", "2023-01-01 00:00",
        "2023-01-01 00:00:00Z", "2023-1-01 00:00:00", "2023-01-01 0:00:00",
        "2023-01-01 00:00:00.", "2023-01-01 00:00:00 ", " 2023-01-01 00:00:00",
        "2023-01-01 00:00:00x", "+2023-01-01 00:00:00", "2023-01-01 00:00:1e1",
        "2023-01-01T00:00:-1", "2023/01/01 00:00:00", NULL};
    rapid_err err = RAPID_ERR_INIT;
    double mjd = 12345.0;
    int i;

    (void)state;
    for (i = 0; bad[i]; i++) {
        rapid_err_clear(&err);
        if (rapid_mjd_from_iso(bad[i], &mjd, &err) != RAPID_E_ARG)
            fail_msg("'%s' was accepted", bad[i]);
        assert_true(mjd == 12345.0);
        assert_int_equal(err.code, RAPID_E_ARG);
        if (bad[i][0] && !strstr(err.msg, bad[i]))
            fail_msg("'%s': message does not name it: %s", bad[i], err.msg);
    }
    assert_int_equal(rapid_mjd_from_iso(NULL, &mjd, &err), RAPID_E_ARG);
    assert_int_equal(rapid_mjd_from_iso("2023-02-30 00:00:00", &mjd, &err),
                     RAPID_E_ARG);
    assert_non_null(strstr(err.msg, "no such day"));
}

/* Rounding to the millisecond carries into seconds, minutes, days and
 * years, on both sides of MJD 0. */
static void test_rounding(void **state)
{
    char buf[RAPID_ISO_MAX];

    (void)state;
    assert_string_equal(iso_of(mjd_of("2028-09-06 23:59:59.9996")),
                        "2028-09-07T00:00:00.000");
    assert_string_equal(iso_of(mjd_of("2028-09-06 23:59:59.9994")),
                        "2028-09-06T23:59:59.999");
    assert_string_equal(iso_of(mjd_of("2028-09-06 12:34:59.9996")),
                        "2028-09-06T12:35:00.000");
    assert_string_equal(iso_of(mjd_of("2027-12-31T23:59:59.99999")),
                        "2028-01-01T00:00:00.000");
    assert_string_equal(iso_of(mjd_of("2028-09-06 00:00:00.0004")),
                        "2028-09-06T00:00:00.000");
    assert_string_equal(iso_of(-1e-9), "1858-11-17T00:00:00.000");
    assert_string_equal(iso_of(-0.6 / 86400), "1858-11-16T23:59:59.400");
    /* the output is cut, never overrun, and nonsense gives "" */
    rapid_iso_from_mjd(51544.5, buf, 11);
    assert_string_equal(buf, "2000-01-01");
    buf[0] = 'x';
    rapid_iso_from_mjd(51544.5, buf, 0);
    assert_int_equal(buf[0], 'x');
    rapid_iso_from_mjd(NAN, buf, sizeof buf);
    assert_string_equal(buf, "");
    rapid_iso_from_mjd(1e300, buf, sizeof buf);
    assert_string_equal(buf, "");
}

static void next_date(int *y, int *m, int *d)
{
    if (++*d > rapid_days_in_month(*y, *m)) {
        *d = 1;
        if (++*m > 12) {
            *m = 1;
            ++*y;
        }
    }
}

/* MJD -> text -> MJD within half a millisecond, and the text again the
 * same; day numbers <-> dates over 1200 years, counted day by day. */
static void test_round_trips(void **state)
{
    uint64_t seed = 20280907;
    int64_t day;
    int i, y, m, d, ey = 1500, em = 1, ed = 1;

    (void)state;
    for (i = 0; i < 100000; i++) {
        double mjd = -100000 + 300000 * test_uniform(&seed), back;
        char s[RAPID_ISO_MAX];
        rapid_iso_from_mjd(mjd, s, sizeof s);
        back = mjd_of(s);
        if (!(fabs(back - mjd) <= 0.5e-3 / 86400 + 1e-10))
            fail_msg("%.12f -> %s -> %.12f", mjd, s, back);
        assert_string_equal(iso_of(back), s);
    }
    for (day = rapid_days_from_civil(1500, 1, 1);
         day < rapid_days_from_civil(2700, 1, 1); day++) {
        rapid_civil_from_days(day, &y, &m, &d);
        if (y != ey || m != em || d != ed ||
            rapid_days_from_civil(y, m, d) != day)
            fail_msg("day %lld -> %04d-%02d-%02d, want %04d-%02d-%02d",
                     (long long)day, y, m, d, ey, em, ed);
        next_date(&ey, &em, &ed);
    }
}

/* The looser form the database reads: dates alone, minutes, Z, a leap
 * second, microseconds rounded on the 7th digit. */
static void test_parse_us(void **state)
{
    rapid_err err = RAPID_ERR_INIT;
    int64_t us = 0, day = INT64_C(86400000000);

    (void)state;
    assert_int_equal(rapid_iso_parse_us("2024-02-29", &us, &err), 0);
    assert_true(us == rapid_days_from_civil(2024, 2, 29) * day);
    assert_int_equal(rapid_iso_parse_us("1970-01-01T00:00:01.1234565Z", &us, &err),
                     0);
    assert_true(us == 1123457);
    assert_int_equal(rapid_iso_parse_us("1970-01-01 12:30", &us, &err), 0);
    assert_true(us == INT64_C(45000000000));
    assert_int_equal(rapid_iso_parse_us("1969-12-31T23:59:60", &us, &err), 0);
    assert_true(us == 0);
    assert_int_equal(rapid_iso_parse_us("1969-12-31T23:59:61", &us, &err),
                     RAPID_E_ARG);
    assert_int_equal(rapid_iso_parse_us("2023-02-29", &us, &err), RAPID_E_ARG);
    assert_int_equal(rapid_iso_parse_us("2023-01-01T", &us, &err), RAPID_E_ARG);
    assert_int_equal(rapid_iso_parse_us("2023-01-01ZZ", &us, &err), RAPID_E_ARG);
    assert_non_null(strstr(err.msg, "2023-01-01ZZ"));
    assert_int_equal(rapid_iso_parse_us(NULL, &us, &err), RAPID_E_ARG);
    /* the same instants as MJD, where both forms take them */
    assert_int_equal(rapid_iso_parse_us("2028-09-07 01:02:03.5", &us, &err), 0);
    assert_true(fabs(mjd_of("2028-09-07 01:02:03.5") -
                     ((double)us / 86400e6 + RAPID_MJD_1970)) < 1e-10);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_values), cmocka_unit_test(test_leap_days),
        cmocka_unit_test(test_invalid),      cmocka_unit_test(test_rounding),
        cmocka_unit_test(test_round_trips),  cmocka_unit_test(test_parse_us),
    };

    return cmocka_run_group_tests_name("timeutil", tests, NULL, NULL);
}
