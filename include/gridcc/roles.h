/* roles: who a user is to gridcc. One bit a role, so that a route or a rule
 * can name several at once; the store keeps the name. */
#ifndef GRIDCC_ROLES_H
#define GRIDCC_ROLES_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    ROLE_NONE = 0,            /* anonymous, or an unknown name */
    ROLE_OPERATOR = 1,
    ROLE_WORKER = 2,
    ROLE_PLANNER = 4,
    ROLE_ADMIN = 8,
    ROLE_DEPARTMENT = 16,
    ROLE_RESIDENT = 32,
} gc_role;

/* Everyone who works for the command center, and everyone with an account. */
#define ROLE_STAFF (ROLE_OPERATOR | ROLE_WORKER | ROLE_PLANNER | ROLE_ADMIN | ROLE_DEPARTMENT)
#define ROLE_ANY (ROLE_STAFF | ROLE_RESIDENT)

/* "operator" … "resident"; ROLE_NONE for anything else (NULL too). */
gc_role role_parse(const char *s);
/* The name of one role; "anonymous" for ROLE_NONE, "?" for a mask. */
const char *role_name(gc_role r);
/* "operator, admin": the names in a mask, for messages. buf: at least 96 bytes. */
const char *role_list(unsigned mask, char *buf, size_t len);

/* Who is calling: filled in by authentication (id 0 and ROLE_NONE: nobody). */
typedef struct gc_who {
    int64_t id;
    gc_role role;
    char name[128];
    char department[64];      /* for ROLE_DEPARTMENT: which one; else "" */
} gc_who;

#endif
