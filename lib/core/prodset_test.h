/* prodset_test.h - a switch for tests only (not public): make prodset.c
 * behave as on a file system without renameat2(RENAME_EXCHANGE), so that
 * tests/test_prodset.c exercises the two-rename path too. */
#ifndef RAPID_PRODSET_TEST_H
#define RAPID_PRODSET_TEST_H

extern int rapid_prodset_test_no_exchange;

#endif
