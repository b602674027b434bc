// Container set-up mode ("kata-agent init"), run in a fresh single-threaded process that
// the agent starts from its sealed memfd copy. Configured over the socketpair on fd 3.
#pragma once

namespace kata {

int ContainerInitMain(int argc, char** argv);

}  // namespace kata
