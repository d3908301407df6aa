/* levels: names and relations of the hierarchy levels. */
#include "gridcc/levels.h"

#include <string.h>

static const char *names[LEVEL_N] = {"district", "street",    "community", "grid",
                                     "building", "unit",      "dedicated", "dept"};

const char *level_name(gc_level l) { return l >= 0 && l < LEVEL_N ? names[l] : NULL; }

gc_level level_parse(const char *s)
{
    if (!s)
        return LEVEL_NONE;
    if (!strncmp(s, "dept:", 5))
        return LEVEL_DEPT;
    for (int i = 0; i < LEVEL_N; i++)
        if (!strcmp(s, names[i]))
            return (gc_level)i;
    return LEVEL_NONE;
}

gc_level level_parent(gc_level l)
{
    switch (l) {
    case LEVEL_STREET:
    case LEVEL_COMMUNITY:
    case LEVEL_GRID:
    case LEVEL_BUILDING:
    case LEVEL_UNIT:
        return (gc_level)(l - 1);
    case LEVEL_DEDICATED:
        return LEVEL_STREET;   /* a campus spans communities, not streets */
    default:
        return LEVEL_NONE;
    }
}

int level_tiles_parent(gc_level l)
{
    return l == LEVEL_STREET || l == LEVEL_COMMUNITY || l == LEVEL_GRID;
}
