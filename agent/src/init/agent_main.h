// The agent's main: configuration, PID 1 duties when it is PID 1, then the RPC server.
#pragma once

namespace kata {

int AgentMain(int argc, char** argv);

}  // namespace kata
