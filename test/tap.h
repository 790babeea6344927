/*
 * tap.h — the TAP output the pure-C tests share: check() prints one
 * "ok N - ..." line, tap_done() the plan and the exit status (1 when a
 * check failed).
 */
#ifndef SMX_TEST_TAP_H
#define SMX_TEST_TAP_H

#include <stdarg.h>
#include <stdio.h>

static int	n_checks = 0;
static int	n_failed = 0;

static void check(int ok, const char *fmt,...) __attribute__((format(printf, 2, 3)));

static void
check(int ok, const char *fmt,...)
{
	va_list		ap;

	n_checks++;
	if (!ok)
		n_failed++;
	printf("%s %d - ", ok ? "ok" : "not ok", n_checks);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
}

static int
tap_done(void)
{
	printf("1..%d\n", n_checks);
	if (n_failed)
		printf("# %d of %d checks failed\n", n_failed, n_checks);
	return n_failed ? 1 : 0;
}

#endif							/* SMX_TEST_TAP_H */
