#ifndef CREPO_PQ_H
#define CREPO_PQ_H
/* The part of libpq, PostgreSQL's client library, that `repo` uses (PostgreSQL documentation,
   "libpq — C Library"), declared here with the signatures of libpq-fe.h and loaded with
   dlopen("libpq.so.5") on first use rather than linked.

   Why: libpq pulls about twenty more shared libraries into every process (Kerberos, LDAP,
   GnuTLS, SASL); linked, they cost every `repo wal-push` about 4 ms of start-up (a
   PostgreSQL archive_command runs once per 16 MiB of WAL), though only `pg-backup` and
   `pg-restore --start` talk to a server. The types are opaque pointers and the enum values
   used are those of libpq-fe.h, stable since PostgreSQL 7.4. */

typedef struct pg_conn PGconn;
typedef struct pg_result PGresult;
typedef unsigned int Oid;
typedef void (*PQnoticeProcessor)(void *arg, const char *message);

typedef enum { CONNECTION_OK = 0, CONNECTION_BAD = 1 } ConnStatusType;
typedef enum {
    PGRES_EMPTY_QUERY = 0, PGRES_COMMAND_OK = 1, PGRES_TUPLES_OK = 2
} ExecStatusType;

/* 1 if libpq could be loaded (after which every function below may be called), else 0 and
   `crepo_pq_load_error` says why. Thread-safe; loads at most once. */
int crepo_pq_load(void);
const char *crepo_pq_load_error(void);

PGconn *PQconnectdbParams(const char *const *keywords, const char *const *values, int expand_dbname);
ConnStatusType PQstatus(const PGconn *conn);
char *PQerrorMessage(const PGconn *conn);
void PQfinish(PGconn *conn);
PQnoticeProcessor PQsetNoticeProcessor(PGconn *conn, PQnoticeProcessor proc, void *arg);
PGresult *PQexecParams(PGconn *conn, const char *command, int nParams, const Oid *paramTypes,
                       const char *const *paramValues, const int *paramLengths,
                       const int *paramFormats, int resultFormat);
ExecStatusType PQresultStatus(const PGresult *res);
char *PQresultErrorMessage(const PGresult *res);
int PQntuples(const PGresult *res);
int PQnfields(const PGresult *res);
char *PQgetvalue(const PGresult *res, int tup_num, int field_num);
int PQgetisnull(const PGresult *res, int tup_num, int field_num);
void PQclear(PGresult *res);

#endif
