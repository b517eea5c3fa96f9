/* test_csv.c - tables written as CSV: every column type, NaN, quoting,
 * all-or-nothing writes. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rapid/csv.h"
#include "testutil.h"

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    static char buf[4096];
    size_t n;
    if (!f)
        return NULL;
    n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static void test_types(void **state)
{
    rapid_table t = RAPID_TABLE_INIT;
    rapid_err err = RAPID_ERR_INIT;
    double *d;
    float *f;
    int32_t *i;
    int64_t *l;
    char *s;
    const char *p = test_path("t.csv");

    (void)state;
    assert_int_equal(rapid_table_init(&t, 3), 0);
    d = rapid_table_add_f64(&t, "ra", "deg");
    f = rapid_table_add_f32(&t, "flux", "adu");
    i = rapid_table_add_i32(&t, "pass", "");
    l = rapid_table_add_i64(&t, "id", "");
    s = rapid_table_add_str(&t, "name", 8);
    d[0] = 150.123456789012345, d[1] = NAN, d[2] = -0.5;
    f[0] = 1.5f, f[1] = 1.0f / 3, f[2] = NAN;
    i[0] = 1, i[1] = 0, i[2] = -7;
    l[0] = 1, l[1] = 5000000000LL, l[2] = 3;
    memcpy(s, "plain", 5);
    memcpy(s + 8, "a,b", 3);
    memcpy(s + 16, "say \"x\"", 7);
    assert_ok(rapid_table_write_csv(p, &t, &err), err);
    assert_string_equal(slurp(p),
                        "ra,flux,pass,id,name\n"
                        "150.12345678901235,1.5,1,1,plain\n"
                        "nan,0.333333343,0,5000000000,\"a,b\"\n"
                        "-0.5,nan,-7,3,\"say \"\"x\"\"\"\n");
    /* a directory that does not exist: refused, named, nothing left */
    assert_int_equal(rapid_table_write_csv(test_path("no/t.csv"), &t, &err), RAPID_E_IO);
    assert_non_null(strstr(err.msg, "no/t.csv: cannot write"));
    assert_int_equal(test_count_entries(test_tmpdir()), 1);
    rapid_table_release(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_types),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
