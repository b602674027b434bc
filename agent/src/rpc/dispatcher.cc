#include "rpc/dispatcher.h"

#include <google/protobuf/descriptor.h>

#include "util/log.h"

namespace kata {

void Dispatcher::DeclareServices(std::initializer_list<std::string_view> names) {
  const auto* pool = google::protobuf::DescriptorPool::generated_pool();
  for (std::string_view name : names) {
    const auto* svc = pool->FindServiceByName(std::string(name));
    if (svc == nullptr) continue;
    for (int i = 0; i < svc->method_count(); i++) {
      declared_.insert(StrCat(svc->full_name(), "/", svc->method(i)->name()));
    }
  }
}

void Dispatcher::AddRaw(std::string method, RawHandler handler) {
  auto e = std::make_unique<Entry>();
  e->handler = std::move(handler);
  handlers_[std::move(method)] = std::move(e);
}

bool Dispatcher::Known(std::string_view method) const {
  std::string m(method);
  return handlers_.count(m) || declared_.count(m);
}

namespace {

Status CapMessage(Status st) {
  if (st.message().size() <= Dispatcher::kMaxErrorMessage) return st;
  const std::string m(st.message());
  std::string suffix = StrCat("... (", m.size(), " bytes in all)");
  return Status(st.code(),
                StrCat(m.substr(0, Dispatcher::kMaxErrorMessage - suffix.size()), suffix));
}

}  // namespace

Status Dispatcher::Call(CallContext& ctx, std::string_view request, std::string* response) const {
  auto it = handlers_.find(ctx.method());
  if (it == handlers_.end()) {
    if (declared_.count(ctx.method())) {
      return absl::UnimplementedError(StrCat(ctx.method(), " is not implemented by this agent"));
    }
    return CapMessage(absl::UnimplementedError(StrCat("unknown method ", ctx.method())));
  }
  Entry& e = *it->second;
  e.calls.fetch_add(1, std::memory_order_relaxed);
  Status st;
  try {
    if (admission_) st = admission_(ctx.method(), request);
    if (st.ok()) st = e.handler(ctx, request, response);
  } catch (const std::exception& ex) {
    st = absl::InternalError(StrCat(ctx.method(), ": unexpected exception: ", ex.what()));
  } catch (...) {
    st = absl::InternalError(StrCat(ctx.method(), ": unexpected exception"));
  }
  if (!st.ok()) {
    st = CapMessage(std::move(st));
    e.errors.fetch_add(1, std::memory_order_relaxed);
    log::Debug("call failed")
        .Kv("method", ctx.method())
        .Kv("code", absl::StatusCodeToString(st.code()))
        .Kv("error", st.message());
  }
  return st;
}

std::unordered_map<std::string, Dispatcher::Counters> Dispatcher::Snapshot() const {
  std::unordered_map<std::string, Counters> out;
  for (const auto& [name, e] : handlers_) {
    out[name] = Counters{e->calls.load(), e->errors.load()};
  }
  return out;
}

}  // namespace kata
