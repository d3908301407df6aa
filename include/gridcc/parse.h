/* parse: one reading of the numbers and times people, devices and exports
 * write, for every module that takes them as text (query parameters, form
 * fields, CLI options, CSV cells, tracker fields). */
#ifndef GRIDCC_PARSE_H
#define GRIDCC_PARSE_H

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

#include "gridcc/err.h"

/* ---- numbers ----
 * The whole of s, in the C locale whatever the process's locale, decimal
 * only (no hex, no "nan", no "inf", no blanks), finite and within [lo, hi].
 * 0, or GC_EINVAL with err naming field: "FIELD must be a number from LO to
 * HI, not "TEXT"" (or "… is missing" for NULL or ""). */
int gc_parse_double(const char *s, const char *field, double lo, double hi, double *out,
                    gc_err *err);
/* A whole number in [lo, hi] (no sign of a fraction, no overflow). */
int gc_parse_int(const char *s, const char *field, int64_t lo, int64_t hi, int64_t *out,
                 gc_err *err);
/* n numbers separated by commas, each as gc_parse_double with no range
 * (a bbox: "minlon,minlat,maxlon,maxlat"). */
int gc_parse_doubles(const char *s, const char *field, double *out, int n, gc_err *err);

/* ---- times ---- */

/* Unix seconds (digits; eight digits are a date, 20261120); ISO 8601 with a
 * zone, or without one (local time, seconds optional); "2026-11-20 08:30[:00]",
 * "2026/11/20 08:30[:00]", NYC's "01/03/2025 12:34:56 PM" and "01/03/2025
 * 12:34[:56]"; a date alone is local midnight. False for anything else,
 * and for a time outside GC_TIME_MIN..GC_TIME_MAX. */
/* GLib's dates run from year 1 to 9999; a day in from both ends, every zone
 * can show the time again (callers format what they read). */
#define GC_TIME_MIN (-62135596800LL + 86400) /* 0001-01-02T00:00:00Z */
#define GC_TIME_MAX (253402300799LL - 86400) /* 9999-12-30T23:59:59Z */
bool gc_time_parse(const char *s, int64_t *out);
/* The same, with zone-less times in zone (borrowed; NULL: local time). */
bool gc_time_parse_in(const char *s, GTimeZone *zone, int64_t *out);
/* A device's time, in ms since the epoch: Unix seconds (decimals allowed),
 * milliseconds (12 digits or more) or ISO 8601 (zone-less: UTC), with blanks
 * around allowed. False for anything else, for times before 2000 (a receiver
 * without a clock) and after GC_TIME_MAX. */
bool gc_time_parse_device(const char *s, int64_t *ms);

#endif
