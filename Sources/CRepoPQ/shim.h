#ifndef CREPO_PQ_SHIM_H
#define CREPO_PQ_SHIM_H
/* libpq, PostgreSQL's client library (PostgreSQL documentation, "libpq — C Library"); the
   include directory comes from pkg-config libpq (Debian: libpq-dev). */
#include <libpq-fe.h>
#endif
