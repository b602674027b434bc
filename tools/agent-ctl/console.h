// agent-ctl's byte-stream subcommands, for the agent's debug console and log ports:
//
//   agent-ctl console --addr hvsock:///run/vm/vsock.sock:1026 [--escape CHAR|none]
//   agent-ctl logs --addr hvsock:///run/vm/vsock.sock:1025 [--follow]
//
// console: an interactive terminal over the raw stream. With a terminal on stdin it is put
// in raw mode (restored on every way out, signals included) and Enter ~. leaves (Enter ~?
// lists the escapes); without one (scripted use) stdin is sent as is, its end is passed on
// as a half-close (the shell reads end-of-file) and the output is copied until the agent
// closes the connection.
// logs: prints the agent's JSON log lines: the backlog the agent kept, then exits; with
// --follow, goes on with new lines until the connection ends or agent-ctl is interrupted.
#pragma once

#include <string>

namespace kata::ctl {

// argv[0] is the subcommand's name; addr and timeout_s as given before it (may be empty).
int ConsoleMain(const std::string& addr, double timeout_s, int argc, char** argv);
int LogsMain(const std::string& addr, double timeout_s, int argc, char** argv);

}  // namespace kata::ctl
