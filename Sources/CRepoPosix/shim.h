// Linux calls the Glibc Swift module does not expose: extended attributes, O_NOATIME, mallopt.
// No _GNU_SOURCE here: it would change shared type definitions and clash with SwiftGlibc.
#ifndef CREPO_POSIX_SHIM_H
#define CREPO_POSIX_SHIM_H
#include <sys/types.h>
#include <sys/xattr.h>
#include <malloc.h>
#include <stdio.h>

// O_NOATIME is only visible with _GNU_SOURCE; its value is 01000000 on every Linux
// architecture except alpha, sparc and parisc (asm-generic/fcntl.h).
static inline int crepo_o_noatime(void) { return 01000000; }

static inline ssize_t crepo_llistxattr(const char *path, char *list, size_t size) {
    return llistxattr(path, list, size);
}
static inline ssize_t crepo_lgetxattr(const char *path, const char *name, void *value, size_t size) {
    return lgetxattr(path, name, value, size);
}
static inline int crepo_lsetxattr(const char *path, const char *name, const void *value, size_t size) {
    return lsetxattr(path, name, value, size, 0);
}
static inline int crepo_lremovexattr(const char *path, const char *name) {
    return lremovexattr(path, name);
}

// Flushes standard output; -1 (errno set) if it or an earlier write to it failed.
static inline int crepo_flush_stdout(void) {
    if (fflush(stdout) != 0) return -1;
    return ferror(stdout) ? -1 : 0;
}

// Fixes glibc's mmap threshold (see RepoMain.main).
static inline int crepo_set_mmap_threshold(int bytes) { return mallopt(M_MMAP_THRESHOLD, bytes); }
#endif
