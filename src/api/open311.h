/* open311: the POST requests form's reading, apart from the handler so that
 * it can be fuzzed (private to src/api). */
#ifndef GRIDCC_OPEN311_H
#define GRIDCC_OPEN311_H

#include <glib.h>
#include <jansson.h>

/* The urlencoded body's parameters (g_uri_parse_params), or NULL with ge. */
GHashTable *open311_form_params(const void *data, size_t len, GError **ge);
/* What of p goes into the incident as it is: the reporter (email, names,
 * phone, device_id, account_id) and props (media_url, every attribute[CODE]
 * as open311_attributes.CODE, the channel). Both new references. */
void open311_form_people(GHashTable *p, json_t **reporter, json_t **properties);

#endif
