/* log: the single place that formats log lines, so every module's events read
 * the same way and can be grepped by level and module. */
#include "gridcc/log.h"

#include <glib.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static enum log_level min_level = LOG_INFO;
static const char *names[] = {"DEBUG", "INFO", "WARN", "ERROR"};

void log_set_level(enum log_level min)
{
    min_level = min;
}

void log_msg(enum log_level lvl, const char *module, const char *fmt, ...)
{
    if (lvl < min_level)
        return;
    char line[2048];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof line,
                     "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s %s: ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     ts.tv_nsec / 1000000, names[lvl], module);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    va_end(ap);
    /* one event, one line: a message must not break the format; what
     * clients sent (paths, names) may not be UTF-8, and a log is text */
    for (char *p = line + n; *p; p++)
        if (*p == '\n' || *p == '\r' || (unsigned char)*p < 0x20)
            *p = ' ';
    if (!g_utf8_validate(line, -1, NULL)) {
        char *valid = g_utf8_make_valid(line, -1);
        fprintf(stderr, "%s\n", valid);
        g_free(valid);
        return;
    }
    fprintf(stderr, "%s\n", line);
}
