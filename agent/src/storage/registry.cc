#include "storage/registry.h"

#include <algorithm>

#include "util/log.h"

namespace kata {

std::optional<MountedStorage> StorageRegistry::Unref(const std::string& mount_point) {
  auto it = entries_.find(mount_point);
  if (it == entries_.end() || it->second.refs <= 0) return std::nullopt;
  if (--it->second.refs > 0 || it->second.shared) return std::nullopt;
  MountedStorage m = std::move(it->second.mounted);
  entries_.erase(it);
  cv_.notify_all();
  return m;
}

Status StorageRegistry::Acquire(CallContext& ctx, const std::string& owner,
                                const std::vector<StorageSpec>& specs, const MountFn& mount) {
  std::vector<std::string> taken;
  auto undo_taken = [&] {
    std::vector<MountedStorage> to_undo;
    {
      std::lock_guard<std::mutex> lk(mu_);
      auto& list = owners_[owner];
      for (auto it = taken.rbegin(); it != taken.rend(); ++it) {
        auto pos = std::find(list.rbegin(), list.rend(), *it);
        if (pos != list.rend()) list.erase(std::next(pos).base());
        if (auto m = Unref(*it)) to_undo.push_back(std::move(*m));
      }
      if (list.empty()) owners_.erase(owner);
    }
    for (const auto& m : to_undo) (void)undo_(m);
  };

  for (const StorageSpec& s : specs) {
    bool must_mount = false;
    {
      std::unique_lock<std::mutex> lk(mu_);
      while (true) {
        auto it = entries_.find(s.mount_point);
        if (it == entries_.end()) {
          Entry e;
          e.refs = 1;
          e.shared = s.shared;
          e.seq = next_seq_++;
          entries_.emplace(s.mount_point, std::move(e));
          must_mount = true;
          break;
        }
        if (it->second.ready) {
          it->second.refs++;
          break;
        }
        // Another call is mounting it: wait for it to be ready or gone.
        const std::string mp = s.mount_point;
        Status st = ctx.Wait(lk, cv_, [&] {
          auto i = entries_.find(mp);
          return i == entries_.end() || i->second.ready;
        });
        if (!st.ok()) {
          lk.unlock();
          undo_taken();
          return Annotate(st, StrCat("storage ", mp, ": waiting for another request mounting it"));
        }
      }
      owners_[owner].push_back(s.mount_point);
    }
    taken.push_back(s.mount_point);
    if (!must_mount) {
      log::Debug("storage shared").Kv("mount_point", s.mount_point).Kv("owner", owner);
      continue;
    }
    StatusOr<MountedStorage> m = mount(s);
    std::unique_lock<std::mutex> lk(mu_);
    auto it = entries_.find(s.mount_point);
    if (m.ok()) {
      it->second.mounted = std::move(*m);
      it->second.ready = true;
      cv_.notify_all();
      continue;
    }
    // Failed: forget the entry (a waiter for it mounts it itself), then this call's other
    // references.
    auto& list = owners_[owner];
    auto pos = std::find(list.rbegin(), list.rend(), s.mount_point);
    if (pos != list.rend()) list.erase(std::next(pos).base());
    taken.pop_back();
    entries_.erase(it);
    cv_.notify_all();
    lk.unlock();
    undo_taken();
    return m.status();
  }
  return absl::OkStatus();
}

void StorageRegistry::Rename(const std::string& from, const std::string& to) {
  std::lock_guard<std::mutex> lk(mu_);
  auto it = owners_.find(from);
  if (it == owners_.end()) return;
  std::vector<std::string> list = std::move(it->second);
  owners_.erase(it);
  auto& dst = owners_[to];
  dst.insert(dst.end(), list.begin(), list.end());
}

Status StorageRegistry::Release(const std::string& owner) {
  std::vector<MountedStorage> to_undo;
  {
    std::lock_guard<std::mutex> lk(mu_);
    auto it = owners_.find(owner);
    if (it == owners_.end()) return absl::OkStatus();
    std::vector<std::string> list = std::move(it->second);
    owners_.erase(it);
    for (auto mp = list.rbegin(); mp != list.rend(); ++mp) {
      if (auto m = Unref(*mp)) to_undo.push_back(std::move(*m));
    }
  }
  Status first = absl::OkStatus();
  for (const auto& m : to_undo) {
    Status st = undo_(m);
    if (!st.ok()) {
      log::Warn("storage not undone").Kv("mount_point", m.mount_point).Kv("error", st.ToString());
      if (first.ok()) first = st;
    }
  }
  return first;
}

Status StorageRegistry::ReleaseAll() {
  std::vector<std::pair<uint64_t, MountedStorage>> all;
  {
    std::lock_guard<std::mutex> lk(mu_);
    for (auto it = entries_.begin(); it != entries_.end();) {
      if (!it->second.ready) {  // being mounted: its Acquire finishes it
        ++it;
        continue;
      }
      all.emplace_back(it->second.seq, std::move(it->second.mounted));
      it = entries_.erase(it);
    }
    owners_.clear();
    cv_.notify_all();
  }
  std::sort(all.begin(), all.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  Status first = absl::OkStatus();
  for (const auto& [seq, m] : all) {
    Status st = undo_(m);
    if (!st.ok()) {
      log::Warn("storage not undone").Kv("mount_point", m.mount_point).Kv("error", st.ToString());
      if (first.ok()) first = st;
    }
  }
  return first;
}

int StorageRegistry::RefCount(const std::string& mount_point) const {
  std::lock_guard<std::mutex> lk(mu_);
  auto it = entries_.find(mount_point);
  return it == entries_.end() ? -1 : it->second.refs;
}

std::vector<std::string> StorageRegistry::MountPoints() const {
  std::lock_guard<std::mutex> lk(mu_);
  std::vector<std::string> out;
  for (const auto& [mp, e] : entries_) out.push_back(mp);
  return out;
}

}  // namespace kata
