// `longshore build`: pack the context, submit to a scheduler, follow the
// events, and place client-side outputs.
#ifndef LONGSHORE_CLIENT_BUILD_COMMAND_H_
#define LONGSHORE_CLIENT_BUILD_COMMAND_H_

#include <string>

#include "client/build_flags.h"

namespace longshore::client {

// Runs the build against `flags.scheduler` and returns the process exit status:
// 0 when the build succeeded and every output was written, 1 otherwise (the
// failing step, its Dockerfile line and the reason are on stderr).
int RunBuild(const BuildFlags& flags);

}  // namespace longshore::client

#endif  // LONGSHORE_CLIENT_BUILD_COMMAND_H_
