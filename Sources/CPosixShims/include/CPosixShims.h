#ifndef VERTEBRA_CPOSIXSHIMS_H
#define VERTEBRA_CPOSIXSHIMS_H

/// A pipe whose two ends are close-on-exec from the start (pipe2 with O_CLOEXEC on Linux), so a
/// process spawned concurrently cannot inherit them. Returns 0, or -1 with errno set.
int vertebra_pipe_cloexec(int fds[2]);

#endif
