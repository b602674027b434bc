// kata-agent: the in-guest agent. One static binary with two modes:
//   kata-agent [--server-addr ADDR] ...   the agent (PID 1 in the guest, or a plain process)
//   kata-agent init                       container set-up, started by the agent itself from
//                                         its sealed in-memory copy (never by hand)
#include <cstring>

#include "init/agent_main.h"
#include "runtime/container_init.h"

int main(int argc, char** argv) {
  if (argc >= 2 && strcmp(argv[1], "init") == 0) return kata::ContainerInitMain(argc, argv);
  return kata::AgentMain(argc, argv);
}
