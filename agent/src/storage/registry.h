// Reference-counted storages, keyed by mount point: a storage that several containers
// name (a volume, the shared fs) is mounted once, by the first, and undone by the last.
//
//   StorageRegistry reg(UndoStorage);
//   RETURN_IF_ERROR(reg.Acquire(ctx, "c1", specs, mount_fn));  // all or nothing
//   ...
//   RETURN_IF_ERROR(reg.Release("c1"));    // RemoveContainer
//   RETURN_IF_ERROR(reg.ReleaseAll());     // DestroySandbox
//
// Owners are container ids; "" is the sandbox (CreateSandbox.storages). A storage marked
// `shared` stays mounted when its count reaches zero (the next user finds it ready) until
// ReleaseAll. Concurrent Acquires of one mount point: the first mounts, the others wait
// for it (through the call's context) and then share it, or mount it themselves if it
// failed. No lock is held while mounting or unmounting.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "rpc/call_context.h"
#include "storage/storage.h"
#include "util/status.h"

namespace kata {

class StorageRegistry {
 public:
  using MountFn = std::function<StatusOr<MountedStorage>(const StorageSpec&)>;
  using UndoFn = std::function<Status(const MountedStorage&)>;

  explicit StorageRegistry(UndoFn undo) : undo_(std::move(undo)) {}

  // Takes one reference on each storage for owner, mounting those not mounted yet (in
  // order). If one fails, the references this call took are released again and its error
  // returned.
  Status Acquire(CallContext& ctx, const std::string& owner, const std::vector<StorageSpec>& specs,
                 const MountFn& mount);
  // Hands every reference of `from` to `to` (a container's storages are taken under a
  // name of the request's own until the container exists).
  void Rename(const std::string& from, const std::string& to);
  // Drops every reference owner holds (in reverse order); a storage whose count reaches
  // zero is undone (unless shared). Returns the first undo error; the rest still run.
  Status Release(const std::string& owner);
  // Every storage, shared ones included, newest first (a container's volume mounted
  // inside the shared fs goes before the shared fs).
  Status ReleaseAll();

  // The count of the storage at mount_point; -1 when there is none.
  int RefCount(const std::string& mount_point) const;
  std::vector<std::string> MountPoints() const;

 private:
  struct Entry {
    int refs = 0;
    bool shared = false;
    bool ready = false;  // mounted; false while the first user mounts it
    uint64_t seq = 0;    // creation order
    MountedStorage mounted;
  };
  // Drops one reference; returns the storage to undo, if this was the last.
  std::optional<MountedStorage> Unref(const std::string& mount_point);  // mu_ held

  const UndoFn undo_;
  mutable std::mutex mu_;
  std::condition_variable cv_;                              // an entry became ready or went
  std::map<std::string, Entry> entries_;                    // mu_: by mount point
  std::map<std::string, std::vector<std::string>> owners_;  // mu_: owner -> mount points
  uint64_t next_seq_ = 1;                                   // mu_
};

}  // namespace kata
