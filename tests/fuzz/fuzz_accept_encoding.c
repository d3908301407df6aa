/* fuzz_accept_encoding: the Accept-Encoding header as http_accepts_gzip
 * reads it (tiles and the base map choose gzip by it). Besides not
 * crashing: a header that names neither gzip nor * never gets gzip, and the
 * same header appended with ", gzip;q=0" never does either. */
#include "fuzz.h"
#include "gridcc/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    http_req r = {0};
    size_t n = MIN(size, sizeof r.accept_encoding - 16);
    memcpy(r.accept_encoding, data, n);
    r.accept_encoding[n] = 0;
    bool yes = http_accepts_gzip(&r);
    gchar *low = g_ascii_strdown(r.accept_encoding, -1);
    if (!strstr(low, "gzip") && !strchr(low, '*'))
        CHECK(!yes, "gzip chosen from '%s'", r.accept_encoding);
    g_free(low);
    {
        g_strlcat(r.accept_encoding, ",gzip;q=0", sizeof r.accept_encoding);
        if (strlen(r.accept_encoding) < sizeof r.accept_encoding - 1)
            CHECK(!http_accepts_gzip(&r), "gzip;q=0 last still gives gzip: '%s'",
                  r.accept_encoding);
    }
    return 0;
}
