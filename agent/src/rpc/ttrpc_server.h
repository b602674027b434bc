// The ttrpc transport (containerd's protocol, what the Kata runtime speaks).
//
//   static TtrpcServer ttrpc(dispatcher);
//   listener.OnTtrpc([](UniqueFd fd) { ttrpc.AddConnection(std::move(fd)); });
//
// Threads: one poller thread (started with the first connection) reads every ttrpc
// connection through epoll, so an idle connection costs no thread and AddConnection never
// blocks the accept loop. Each request runs on the shared WorkerPool, so calls on one
// connection are served concurrently (a WaitProcess blocked for minutes never delays a
// Check behind it); responses go out whole, one at a time, under the connection's write
// lock, written by the worker that produced them.
//
// Behaviour follows containerd's server (ttrpc 1.1): a frame longer than 4 MiB is skipped
// and answered RESOURCE_EXHAUSTED on its stream, the connection kept; an even stream id or
// an unparseable request is answered INVALID_ARGUMENT; unknown methods UNIMPLEMENTED (the
// dispatcher's answer); frames of other types are ignored. `timeout_nano` becomes the
// call's deadline. End of input (clean or inside a frame) or a read error closes the
// connection and cancels every call still running on it. A connection with too much in
// progress (calls or request bytes) is not read until some of it completes.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "rpc/dispatcher.h"
#include "util/status.h"
#include "util/unique_fd.h"

namespace kata {

class TtrpcServer {
 public:
  explicit TtrpcServer(const Dispatcher& dispatcher) : dispatcher_(dispatcher) {}
  ~TtrpcServer();

  // Takes a connected stream socket (made non-blocking here) and serves it; returns at once.
  void AddConnection(UniqueFd fd);

  // Closes every connection (cancelling their calls) and stops the poller thread.
  void Shutdown();

  size_t connections() const;

 private:
  class Conn;

  Status StartPoller();
  void Loop();
  void ReadFrom(uint64_t id, uint32_t events);
  void Close(uint64_t id, const char* why);

  const Dispatcher& dispatcher_;
  std::once_flag start_once_;
  Status start_status_;
  UniqueFd epoll_, wake_;
  std::thread poller_;
  mutable std::mutex mu_;  // guards conns_ and next_id_
  std::unordered_map<uint64_t, std::shared_ptr<Conn>> conns_;
  uint64_t next_id_ = 1;
  std::atomic<bool> stopping_{false};
};

}  // namespace kata
