#ifndef VERTEBRA_CPOSIXSHIMS_H
#define VERTEBRA_CPOSIXSHIMS_H

/// A pipe whose two ends are close-on-exec from the start (pipe2 with O_CLOEXEC on Linux), so a
/// process spawned concurrently cannot inherit them. Returns 0, or -1 with errno set.
int vertebra_pipe_cloexec(int fds[2]);

#include <spawn.h>

/// Adds to `actions` the closing of every descriptor from `lowest` up in the child
/// (posix_spawn_file_actions_addclosefrom_np, a GNU extension of glibc 2.34). Returns 0, or an
/// error number.
int vertebra_spawn_close_from(posix_spawn_file_actions_t *actions, int lowest);

#endif
