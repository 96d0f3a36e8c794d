// The parent side of longshore-sandbox: prepares a scratch directory, starts
// the step's pid 1 in new namespaces, relays signals, enforces the timeout and
// turns what happened into the exit status.
#ifndef LONGSHORE_SANDBOX_SANDBOX_H_
#define LONGSHORE_SANDBOX_SANDBOX_H_

#include "sandbox/options.h"

namespace longshore::sandbox {

// Runs one step and returns the process exit status for it: the command's,
// 128+N when it was killed by signal N, 124 on timeout, 125 when the sandbox
// failed (after printing exactly one line "longshore-sandbox: operation:
// reason" on stderr), 126/127 when the command could not be executed / found.
// Must be called from a single-threaded process.
int RunSandbox(const SandboxOptions& options);

}  // namespace longshore::sandbox

#endif  // LONGSHORE_SANDBOX_SANDBOX_H_
