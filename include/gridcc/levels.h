/* levels: the grid hierarchy district → street → community → grid → building
 * → unit, plus dedicated grids and department grids beside it. */
#ifndef GRIDCC_LEVELS_H
#define GRIDCC_LEVELS_H

typedef enum {
    LEVEL_DISTRICT,
    LEVEL_STREET,
    LEVEL_COMMUNITY,
    LEVEL_GRID,
    LEVEL_BUILDING,
    LEVEL_UNIT,
    LEVEL_CHAIN_N,              /* the chain levels end here */
    LEVEL_DEDICATED = LEVEL_CHAIN_N,
    LEVEL_DEPT,
    LEVEL_N,
    LEVEL_NONE = -1
} gc_level;

/* "district" … "unit", "dedicated", "dept"; NULL for LEVEL_NONE. */
const char *level_name(gc_level l);
/* Accepts the names above; "dept:NAME" gives LEVEL_DEPT (NAME not checked). */
gc_level level_parse(const char *s);
/* The level a feature's parent sits on: LEVEL_NONE for district and dept;
 * dedicated grids hang under a street. */
gc_level level_parent(gc_level l);
/* Whether children of this level must tile their parent (no gaps). */
int level_tiles_parent(gc_level l);

#endif
