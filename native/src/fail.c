/* The error convention of libsbx's entry points, in the calling process (the CLI's thread, never
 * a cloned child: snprintf and strerror are not async-signal-safe): fill the caller's struct
 * sbx_error with the errno and what failed, set errno, and return -1. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

int sbx_fail(struct sbx_error *err, int e, const char *what)
{
	if (err) {
		err->err = e;
		err->step = -1;
		snprintf(err->message, sizeof err->message, "%s: %s", what, strerror(e));
	}
	errno = e;
	return -1;
}
