/* libpq loaded on first use (crepo_pq.h says why). Each function below forwards to libpq's
   own, resolved once by crepo_pq_load; calling one before a successful load is a bug. */
#include "crepo_pq.h"
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>

static void *library;
static char load_error[512];
static pthread_once_t once = PTHREAD_ONCE_INIT;

#define PQ_FUNCTIONS(X) \
    X(PQconnectdbParams) X(PQstatus) X(PQerrorMessage) X(PQfinish) X(PQsetNoticeProcessor) \
    X(PQexecParams) X(PQresultStatus) X(PQresultErrorMessage) X(PQntuples) X(PQnfields) \
    X(PQgetvalue) X(PQgetisnull) X(PQclear)

#define DECLARE(name) static __typeof__(&name) p_##name;
PQ_FUNCTIONS(DECLARE)

static void load(void) {
    void *h = dlopen("libpq.so.5", RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        snprintf(load_error, sizeof load_error, "%s", dlerror());
        return;
    }
#define RESOLVE(name) \
    if (!(p_##name = (__typeof__(&name))dlsym(h, #name))) { \
        snprintf(load_error, sizeof load_error, "libpq.so.5 lacks %s", #name); \
        dlclose(h); \
        return; \
    }
    PQ_FUNCTIONS(RESOLVE)
    library = h;
}

int crepo_pq_load(void) {
    pthread_once(&once, load);
    return library != NULL;
}

const char *crepo_pq_load_error(void) { return load_error; }

PGconn *PQconnectdbParams(const char *const *k, const char *const *v, int e) { return p_PQconnectdbParams(k, v, e); }
ConnStatusType PQstatus(const PGconn *c) { return p_PQstatus(c); }
char *PQerrorMessage(const PGconn *c) { return p_PQerrorMessage(c); }
void PQfinish(PGconn *c) { p_PQfinish(c); }
PQnoticeProcessor PQsetNoticeProcessor(PGconn *c, PQnoticeProcessor p, void *a) { return p_PQsetNoticeProcessor(c, p, a); }
PGresult *PQexecParams(PGconn *c, const char *q, int n, const Oid *t, const char *const *v, const int *l, const int *f, int r) {
    return p_PQexecParams(c, q, n, t, v, l, f, r);
}
ExecStatusType PQresultStatus(const PGresult *r) { return p_PQresultStatus(r); }
char *PQresultErrorMessage(const PGresult *r) { return p_PQresultErrorMessage(r); }
int PQntuples(const PGresult *r) { return p_PQntuples(r); }
int PQnfields(const PGresult *r) { return p_PQnfields(r); }
char *PQgetvalue(const PGresult *r, int t, int f) { return p_PQgetvalue(r, t, f); }
int PQgetisnull(const PGresult *r, int t, int f) { return p_PQgetisnull(r, t, f); }
void PQclear(PGresult *r) { p_PQclear(r); }
