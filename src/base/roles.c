/* roles: see roles.h. */
#include "gridcc/roles.h"

#include <stdio.h>
#include <string.h>

static const struct {
    gc_role role;
    const char *name;
} names[] = {{ROLE_OPERATOR, "operator"},     {ROLE_WORKER, "worker"},
             {ROLE_PLANNER, "planner"},       {ROLE_ADMIN, "admin"},
             {ROLE_DEPARTMENT, "department"}, {ROLE_RESIDENT, "resident"}};

gc_role role_parse(const char *s)
{
    for (size_t i = 0; s && i < sizeof names / sizeof *names; i++)
        if (!strcmp(s, names[i].name))
            return names[i].role;
    return ROLE_NONE;
}

const char *role_name(gc_role r)
{
    if (r == ROLE_NONE)
        return "anonymous";
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (names[i].role == r)
            return names[i].name;
    return "?";
}

const char *role_list(unsigned mask, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = 0;
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        if (!(mask & names[i].role))
            continue;
        int n = snprintf(buf + used, len - used, "%s%s", used ? ", " : "", names[i].name);
        if (n < 0 || (size_t)n >= len - used)
            break;
        used += (size_t)n;
    }
    return buf;
}
