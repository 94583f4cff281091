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
