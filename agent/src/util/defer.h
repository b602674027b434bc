// Runs a callable when the scope ends, unless cancelled: undo steps on failure paths.
//
//   Defer unmount([&] { umount2(dst, MNT_DETACH); });
//   ... on success: unmount.Cancel();
#pragma once

#include <utility>

namespace kata {

template <typename F>
class Defer {
 public:
  explicit Defer(F f) : f_(std::move(f)) {}
  Defer(const Defer&) = delete;
  Defer& operator=(const Defer&) = delete;
  ~Defer() {
    if (armed_) f_();
  }
  void Cancel() { armed_ = false; }

 private:
  F f_;
  bool armed_ = true;
};

}  // namespace kata
