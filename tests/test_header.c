/* test_header.c - header cards: typed get/set, order, CONTINUE, errors. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rapid/fits.h"
#include "testutil.h"

static void test_get_set_each_type(void **state)
{
    rapid_header h = RAPID_HEADER_INIT;
    char s[100];
    double d = 0;
    long l = 0;
    int b = -1;

    (void)state;
    assert_int_equal(rapid_header_set_str(&h, "OBJECT", "M31 field", "target"), 0);
    assert_int_equal(rapid_header_set_double(&h, "EXPTIME", 139.8, "s"), 0);
    assert_int_equal(rapid_header_set_long(&h, "SCA", 7, NULL), 0);
    assert_int_equal(rapid_header_set_long(&h, "BIGNUM", -9000000000L, NULL), 0);
    assert_int_equal(rapid_header_set_bool(&h, "FLAG", 1, NULL), 0);
    assert_int_equal(rapid_header_set_bool(&h, "NOFLAG", 0, NULL), 0);
    assert_int_equal(h.ncards, 6);

    assert_int_equal(rapid_header_get_str(&h, "OBJECT", s, sizeof s, NULL), 0);
    assert_string_equal(s, "M31 field");
    assert_int_equal(rapid_header_get_double(&h, "EXPTIME", &d, NULL), 0);
    assert_true(d == 139.8);
    assert_int_equal(rapid_header_get_long(&h, "SCA", &l, NULL), 0);
    assert_int_equal(l, 7);
    assert_int_equal(rapid_header_get_long(&h, "BIGNUM", &l, NULL), 0);
    assert_true(l == -9000000000L);
    assert_int_equal(rapid_header_get_bool(&h, "FLAG", &b, NULL), 0);
    assert_int_equal(b, 1);
    assert_int_equal(rapid_header_get_bool(&h, "NOFLAG", &b, NULL), 0);
    assert_int_equal(b, 0);
    /* An integer is also a number. */
    assert_int_equal(rapid_header_get_double(&h, "SCA", &d, NULL), 0);
    assert_true(d == 7.0);
    /* Keywords are case-insensitive; the comment is on the card. */
    assert_int_equal(rapid_header_get_str(&h, "object", s, sizeof s, NULL), 0);
    assert_string_equal(s, "M31 field");
    assert_non_null(strstr(h.cards[0], "/ target"));
    assert_int_equal(strlen(h.cards[0]), 80);
    assert_true(rapid_header_has(&h, "FLAG"));
    assert_false(rapid_header_has(&h, "NOPE"));
    assert_int_equal(rapid_header_find(&h, "SCA"), 2);
    rapid_header_release(&h);
}

static void test_replace_keeps_position(void **state)
{
    rapid_header h = RAPID_HEADER_INIT;
    long l = 0;
    char s[200];

    (void)state;
    rapid_header_set_long(&h, "A", 1, NULL);
    rapid_header_set_long(&h, "B", 2, NULL);
    rapid_header_set_long(&h, "C", 3, NULL);
    assert_int_equal(rapid_header_set_long(&h, "B", 20, NULL), 0);
    assert_int_equal(h.ncards, 3);
    assert_int_equal(rapid_header_find(&h, "B"), 1);
    assert_int_equal(rapid_header_get_long(&h, "B", &l, NULL), 0);
    assert_int_equal(l, 20);
    /* Changing the type of the value keeps the place too. */
    assert_int_equal(rapid_header_set_str(&h, "B", "twenty", NULL), 0);
    assert_int_equal(rapid_header_find(&h, "B"), 1);
    assert_int_equal(rapid_header_find(&h, "C"), 2);
    /* A long value (several cards) replaced by a short one and back. */
    memset(s, 'x', 150);
    s[150] = '\0';
    assert_int_equal(rapid_header_set_str(&h, "B", s, NULL), 0);
    assert_true(h.ncards > 3);
    assert_int_equal(rapid_header_find(&h, "C"), h.ncards - 1);
    assert_int_equal(rapid_header_set_str(&h, "B", "short", NULL), 0);
    assert_int_equal(h.ncards, 3);
    assert_int_equal(rapid_header_find(&h, "C"), 2);
    rapid_header_release(&h);
}

static void test_delete(void **state)
{
    rapid_header h = RAPID_HEADER_INIT;
    char s[300];

    (void)state;
    memset(s, 'y', 200);
    s[200] = '\0';
    rapid_header_set_long(&h, "A", 1, NULL);
    rapid_header_add_text(&h, "HISTORY", "first");
    rapid_header_set_str(&h, "LONG", s, NULL);
    rapid_header_add_text(&h, "HISTORY", "second");
    rapid_header_set_long(&h, "Z", 26, NULL);
    assert_int_equal(rapid_header_delete(&h, "HISTORY"), 2);
    assert_int_equal(rapid_header_delete(&h, "NOPE"), 0);
    /* The CONTINUE cards of a long string go with it. */
    assert_int_equal(rapid_header_delete(&h, "LONG"), 1);
    assert_int_equal(h.ncards, 2);
    assert_int_equal(rapid_header_find(&h, "A"), 0);
    assert_int_equal(rapid_header_find(&h, "Z"), 1);
    assert_int_equal(rapid_header_find(&h, "CONTINUE"), RAPID_E_KEY);
    rapid_header_release(&h);
}

static void check_string_round_trip(const char *value)
{
    rapid_header h = RAPID_HEADER_INIT;
    char out[2048];
    int i;

    assert_int_equal(rapid_header_set_str(&h, "TEXT", value, "a comment"), 0);
    for (i = 0; i < h.ncards; i++)
        assert_int_equal(strlen(h.cards[i]), 80);
    assert_int_equal(rapid_header_get_str(&h, "TEXT", out, sizeof out, NULL), 0);
    assert_string_equal(out, value);
    rapid_header_release(&h);
}

static void test_continue_long_strings(void **state)
{
    char s[1001];
    rapid_header h = RAPID_HEADER_INIT;
    int i;

    (void)state;
    for (i = 0; i < 1000; i++)
        s[i] = (char)('a' + i % 26);
    s[1000] = '\0';
    check_string_round_trip(s);
    s[68] = '\0'; /* the longest that fits one card */
    check_string_round_trip(s);
    s[69] = '\0';
    s[68] = 'z';
    check_string_round_trip(s);

    /* 68 characters fill one card exactly; one more needs CONTINUE. */
    memset(s, 'r', 69);
    s[68] = '\0';
    rapid_header_set_str(&h, "TEXT", s, NULL);
    assert_int_equal(h.ncards, 1);
    s[68] = 'r';
    s[69] = '\0';
    rapid_header_set_str(&h, "TEXT", s, NULL);
    assert_int_equal(h.ncards, 2);

    rapid_header_set_str(&h, "TEXT", "a", NULL);
    assert_int_equal(h.ncards, 1);
    memset(s, 'q', 300);
    s[300] = '\0';
    rapid_header_set_str(&h, "TEXT", s, NULL);
    assert_true(h.ncards >= 5);
    assert_int_equal(strncmp(h.cards[1], "CONTINUE  '", 11), 0);
    rapid_header_release(&h);
}

static void test_quotes_in_strings(void **state)
{
    char s[400];
    int i;

    (void)state;
    check_string_round_trip("O'Brien's \"data\"");
    check_string_round_trip("'");
    check_string_round_trip("''");
    check_string_round_trip("");
    check_string_round_trip("  leading blanks");
    check_string_round_trip("ends with &");
    check_string_round_trip("a / slash is not a comment");
    /* Many quotes double in size on the card: still split correctly. */
    for (i = 0; i < 300; i++)
        s[i] = i % 3 ? '\'' : 'k';
    s[300] = '\0';
    check_string_round_trip(s);
    memset(s, '\'', 200);
    s[200] = '\0';
    check_string_round_trip(s);
}

static void test_missing_and_wrong_type(void **state)
{
    rapid_header h = RAPID_HEADER_INIT;
    rapid_err err = RAPID_ERR_INIT;
    char s[16];
    double d = 0;
    long l = 0;
    int b = 0;

    (void)state;
    rapid_header_set_str(&h, "STRKEY", "hello", NULL);
    rapid_header_set_double(&h, "REALKEY", 1.5, NULL);
    rapid_header_set_bool(&h, "BOOLKEY", 1, NULL);
    rapid_header_add_text(&h, "COMMENT", "just text");

    assert_int_equal(rapid_header_get_long(&h, "MISSING", &l, &err), RAPID_E_KEY);
    assert_int_equal(err.code, RAPID_E_KEY);
    assert_non_null(strstr(err.msg, "MISSING"));
    assert_int_equal(rapid_header_get_str(&h, "GONE", s, sizeof s, &err), RAPID_E_KEY);
    assert_non_null(strstr(err.msg, "GONE"));
    assert_int_equal(rapid_header_get_double(&h, "GONE2", &d, &err), RAPID_E_KEY);
    assert_non_null(strstr(err.msg, "GONE2"));
    assert_int_equal(rapid_header_get_bool(&h, "GONE3", &b, &err), RAPID_E_KEY);
    assert_non_null(strstr(err.msg, "GONE3"));

    assert_int_equal(rapid_header_get_double(&h, "STRKEY", &d, &err), RAPID_E_KEY);
    assert_non_null(strstr(err.msg, "STRKEY"));
    assert_int_equal(rapid_header_get_long(&h, "REALKEY", &l, &err), RAPID_E_KEY);
    assert_non_null(strstr(err.msg, "REALKEY"));
    assert_int_equal(rapid_header_get_long(&h, "STRKEY", &l, &err), RAPID_E_KEY);
    assert_int_equal(rapid_header_get_str(&h, "REALKEY", s, sizeof s, &err), RAPID_E_KEY);
    assert_non_null(strstr(err.msg, "REALKEY"));
    assert_int_equal(rapid_header_get_bool(&h, "STRKEY", &b, &err), RAPID_E_KEY);
    assert_int_equal(rapid_header_get_double(&h, "BOOLKEY", &d, &err), RAPID_E_KEY);
    assert_non_null(strstr(err.msg, "BOOLKEY"));
    assert_int_equal(rapid_header_get_str(&h, "COMMENT", s, sizeof s, &err), RAPID_E_KEY);
    /* A value longer than the buffer is an error, not a silent cut. */
    rapid_header_set_str(&h, "STRKEY", "much too long for sixteen", NULL);
    assert_int_equal(rapid_header_get_str(&h, "STRKEY", s, sizeof s, &err), RAPID_E_KEY);
    assert_non_null(strstr(err.msg, "STRKEY"));
    /* A NULL error record is allowed. */
    assert_int_equal(rapid_header_get_long(&h, "MISSING", &l, NULL), RAPID_E_KEY);
    /* Integers too large for a long are not quietly clamped. */
    assert_int_equal(rapid_header_append_card(&h, "HUGE    = 123456789012345678901234567890"), 0);
    assert_int_equal(rapid_header_get_long(&h, "HUGE", &l, &err), RAPID_E_KEY);
    rapid_header_release(&h);
}

static void check_exact(double v)
{
    rapid_header h = RAPID_HEADER_INIT;
    double back = 0;
    char *s = NULL, raw[81];
    int n = 0;

    assert_int_equal(rapid_header_set_double(&h, "VAL", v, NULL), 0);
    assert_int_equal(rapid_header_get_double(&h, "VAL", &back, NULL), 0);
    assert_memory_equal(&back, &v, sizeof v);
    /* Also after a trip through the FITS text form. */
    s = rapid_header_to_string(&h, &n);
    assert_non_null(s);
    assert_int_equal(n, 2);
    rapid_header_release(&h);
    assert_int_equal(rapid_header_from_string(&h, s, n), 0);
    assert_int_equal(h.ncards, 1);
    assert_int_equal(rapid_header_get_double(&h, "VAL", &back, NULL), 0);
    assert_memory_equal(&back, &v, sizeof v);
    /* Written as a real (with '.' or 'E'), so no reader takes it for an
     * integer. */
    snprintf(raw, sizeof raw, "%.70s", h.cards[0] + 10);
    assert_true(strpbrk(raw, ".E") != NULL);
    free(s);
    rapid_header_release(&h);
}

static void test_numbers_exact(void **state)
{
    (void)state;
    check_exact(0.1);
    check_exact(1e-20);
    check_exact(-123456789.123456789);
    check_exact(1e300);
    check_exact(-1e-300);
    check_exact(1.0 / 3.0);
    check_exact(0.0);
    check_exact(100.0);
    check_exact(2.0e15);
    check_exact(5e-324);
    check_exact(1.7976931348623157e308);
    check_exact(299792.458);
}

static void test_non_finite_rejected(void **state)
{
    rapid_header h = RAPID_HEADER_INIT;

    (void)state;
    assert_int_equal(rapid_header_set_double(&h, "BAD", NAN, NULL), RAPID_E_ARG);
    assert_int_equal(rapid_header_set_double(&h, "BAD", INFINITY, NULL), RAPID_E_ARG);
    assert_int_equal(h.ncards, 0);
    assert_int_equal(rapid_header_set_long(&h, "TOOLONGKEY", 1, NULL), RAPID_E_ARG);
    assert_int_equal(h.ncards, 0);
    rapid_header_release(&h);
}

static void test_text_cards_and_strings(void **state)
{
    rapid_header h = RAPID_HEADER_INIT, copy = RAPID_HEADER_INIT;
    char *s = NULL, text[200];
    int n = 0, i;

    (void)state;
    assert_int_equal(rapid_header_add_text(&h, "COMMENT", "made by rapid"), 0);
    assert_int_equal(rapid_header_add_text(&h, "HISTORY", "step 1"), 0);
    assert_string_equal(h.cards[0],
                        "COMMENT made by rapid                                                           ");
    assert_int_equal(strncmp(h.cards[1], "HISTORY step 1  ", 16), 0);
    /* Text longer than one card continues on more cards of the same key. */
    memset(text, 'w', 150);
    text[150] = '\0';
    assert_int_equal(rapid_header_add_text(&h, "HISTORY", text), 0);
    assert_int_equal(h.ncards, 5);
    for (i = 2; i < 5; i++)
        assert_int_equal(strncmp(h.cards[i], "HISTORY ", 8), 0);
    assert_int_equal(rapid_header_append_card(&h, "SHORT   = 5"), 0);
    assert_int_equal(strlen(h.cards[5]), 80);

    s = rapid_header_to_string(&h, &n);
    assert_non_null(s);
    assert_int_equal(n, 7);
    assert_int_equal(strlen(s), 7 * 80);
    assert_int_equal(strncmp(s + 6 * 80, "END     ", 8), 0);
    assert_int_equal(rapid_header_copy(&copy, &h), 0);
    assert_int_equal(copy.ncards, h.ncards);
    assert_memory_equal(copy.cards, h.cards, (size_t)h.ncards * 81);
    rapid_header_release(&copy);
    assert_int_equal(rapid_header_from_string(&copy, s, n), 0);
    assert_int_equal(copy.ncards, 6);
    assert_memory_equal(copy.cards, h.cards, (size_t)h.ncards * 81);
    free(s);
    rapid_header_release(&copy);
    rapid_header_release(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_set_each_type),
        cmocka_unit_test(test_replace_keeps_position),
        cmocka_unit_test(test_delete),
        cmocka_unit_test(test_continue_long_strings),
        cmocka_unit_test(test_quotes_in_strings),
        cmocka_unit_test(test_missing_and_wrong_type),
        cmocka_unit_test(test_numbers_exact),
        cmocka_unit_test(test_non_finite_rejected),
        cmocka_unit_test(test_text_cards_and_strings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
