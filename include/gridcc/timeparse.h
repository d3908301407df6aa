/* timeparse: one reading of the times people and exports write, for every
 * module that takes a time as text (API filters, Open311 dates, hotline
 * orders). */
#ifndef GRIDCC_TIMEPARSE_H
#define GRIDCC_TIMEPARSE_H

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

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

#endif
