#ifndef CREPO_FUSE_SHIM_H
#define CREPO_FUSE_SHIM_H
/* libfuse 3 high-level API at the 3.1 interface level (Debian's libfuse3-dev). */
#define FUSE_USE_VERSION 31
#include <fuse.h>
#include <fuse_lowlevel.h>
#include <signal.h>
#include <pthread.h>

/* fuse_new and fuse_loop_mt are macros that pick a versioned symbol: wrap them. */
static inline struct fuse *crepo_fuse_new(struct fuse_args *args, const struct fuse_operations *ops, void *user_data) {
    return fuse_new(args, ops, sizeof(*ops), user_data);
}

static inline int crepo_fuse_loop_mt(struct fuse *f) {
    return fuse_loop_mt(f, 0);
}

/* The bitfields of fuse_file_info, set from C so Swift never depends on their layout. */
static inline void crepo_fuse_file_info_set_cache(struct fuse_file_info *fi, int keep_cache) {
    fi->keep_cache = keep_cache ? 1 : 0;
    fi->direct_io = 0;
}

/* Blocks (how = SIG_BLOCK) or unblocks (SIG_UNBLOCK) SIGINT, SIGTERM and SIGHUP in the
   calling thread; threads created afterwards inherit the mask. */
static inline int crepo_mask_stop_signals(int how) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    return pthread_sigmask(how, &set, NULL);
}
#endif
