// pipe2 is a GNU extension: Swift's Glibc module, built without _GNU_SOURCE, does not show it.
#define _GNU_SOURCE
#include <fcntl.h>
#include <unistd.h>

#include "CPosixShims.h"

int vertebra_pipe_cloexec(int fds[2]) {
#if defined(__linux__)
    return pipe2(fds, O_CLOEXEC);
#else
    // No pipe2 here: set the flag right after (callers serialise their spawns on such systems).
    if (pipe(fds) != 0) return -1;
    fcntl(fds[0], F_SETFD, FD_CLOEXEC);
    fcntl(fds[1], F_SETFD, FD_CLOEXEC);
    return 0;
#endif
}

#include <errno.h>
#include <spawn.h>

int vertebra_spawn_close_from(posix_spawn_file_actions_t *actions, int lowest) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
    return posix_spawn_file_actions_addclosefrom_np(actions, lowest);
#else
    // No closefrom action here: mark every descriptor from `lowest` close-on-exec instead (one
    // opened by another thread meanwhile may still be inherited).
    (void)actions;
    long most = sysconf(_SC_OPEN_MAX);
    for (int fd = lowest; fd < (most > 0 ? most : 1024); fd++) {
        int flags = fcntl(fd, F_GETFD);
        if (flags >= 0) fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
    }
    return 0;
#endif
}
