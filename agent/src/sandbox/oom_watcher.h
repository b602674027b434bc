// The producer of GetOOMEvent: watches each container's memory.events with inotify and
// queues the container's id once per oom_kill the kernel counts there.
//
//   OomWatcher w(&oom_events);
//   RETURN_IF_ERROR(w.Start());
//   w.Watch("c1", "/sys/fs/cgroup/sandbox/c1/memory.events");  // after the cgroup exists
//   ...
//   w.Unwatch("c1");   // reads the file a last time first: no kill is lost at removal
//
// memory.events counts the kills in the cgroup and below it, whichever limit was hit (the
// container's own, or the containers' parent's): either way the id is the container's.
// Several kills between two polls are all queued, in order.
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <thread>

#include "sandbox/oom_events.h"
#include "util/status.h"
#include "util/unique_fd.h"

namespace kata {

class OomWatcher {
 public:
  explicit OomWatcher(OomEvents* events) : events_(events) {}
  ~OomWatcher();

  Status Start();
  Status Watch(const std::string& container_id, const std::string& memory_events_path);
  void Unwatch(const std::string& container_id);

 private:
  struct Entry {
    std::string id, path;
    uint64_t oom_kills = 0;
  };
  void Run();
  void Check(Entry& e);  // mu_ held

  OomEvents* events_;
  UniqueFd inotify_, stop_;
  std::thread thread_;
  std::mutex mu_;
  std::map<int, Entry> by_wd_;        // mu_
  std::map<std::string, int> wd_of_;  // mu_
};

}  // namespace kata
