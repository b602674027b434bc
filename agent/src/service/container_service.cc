// Containers and their processes: CreateContainer, StartContainer, RemoveContainer,
// WaitProcess, SignalProcess, WriteStdin, ReadStdout, ReadStderr, CloseStdin, ExecProcess,
// TtyWinResize.
#include <google/protobuf/empty.pb.h>

#include <algorithm>

#include "agent.pb.h"
#include "runtime/spec.h"
#include "runtime/user.h"
#include "sandbox/sandbox.h"
#include "service/services.h"
#include "storage/storages.h"

namespace kata {
namespace {

using Empty = google::protobuf::Empty;

constexpr size_t kDefaultReadLen = 64 * 1024;
constexpr size_t kMaxReadLen = 1 << 20;  // well under the 4 MiB message limit

// StringUser: names (or numbers) for the process's user and groups, resolved in the
// container. No uid: the spec's numeric ids.
StatusOr<std::optional<UserNames>> ParseStringUser(const grpc::StringUser& su) {
  if (su.uid().empty()) {
    if (!su.gid().empty() || !su.additionalgids().empty())
      return absl::InvalidArgumentError("string_user.uid: empty, but groups are given");
    return std::optional<UserNames>();
  }
  UserNames n;
  n.user = su.uid();
  n.group = su.gid();
  n.additional.assign(su.additionalgids().begin(), su.additionalgids().end());
  RETURN_IF_ERROR(ValidateUserNames(n));
  return std::optional<UserNames>(std::move(n));
}

StatusOr<std::shared_ptr<Process>> FindProcess(Sandbox* sb, const std::string& cid,
                                               const std::string& eid,
                                               std::shared_ptr<Container>* container = nullptr) {
  RETURN_IF_ERROR(ValidateId("container_id", cid));
  if (!eid.empty()) RETURN_IF_ERROR(ValidateId("exec_id", eid));
  ASSIGN_OR_RETURN(std::shared_ptr<Container> c, sb->Get(cid));
  if (container) *container = c;
  return c->FindProcess(eid);
}

}  // namespace

void RegisterContainerService(Dispatcher& d, ServiceEnv& env) {
  Sandbox* sb = env.sandbox;
  Storages* storages = env.storages;

  d.Add<grpc::CreateContainerRequest, Empty>(
      "grpc.AgentService/CreateContainer",
      [sb, storages](CallContext& ctx, const grpc::CreateContainerRequest& req, Empty*) -> Status {
        const std::string& id = req.container_id();
        RETURN_IF_ERROR(ValidateId("container_id", id));
        if (!req.has_oci())
          return absl::InvalidArgumentError(StrCat("create container ", id, ": OCI: no spec"));
        // Validation first, so a malformed spec is INVALID_ARGUMENT naming the field.
        if (StatusOr<ContainerSpec> s = ParseSpec(req.oci()); !s.ok()) {
          return Annotate(s.status(), StrCat("create container ", id));
        }
        if (!req.exec_id().empty()) RETURN_IF_ERROR(ValidateId("exec_id", req.exec_id()));
        StatusOr<std::optional<UserNames>> names = ParseStringUser(req.string_user());
        if (!names.ok()) return Annotate(names.status(), StrCat("create container ", id));
        // Storages and devices first (their waits and mounts), then the container.
        return Annotate(storages->CreateContainerWith(ctx, req,
                                                      [&](const grpc::Spec& spec) {
                                                        return sb->CreateContainer(
                                                            ctx, id, req.exec_id(), spec,
                                                            req.sandbox_pidns(), *names);
                                                      }),
                        StrCat("create container ", id));
      });

  d.Add<grpc::StartContainerRequest, Empty>(
      "grpc.AgentService/StartContainer",
      [sb](CallContext& ctx, const grpc::StartContainerRequest& req, Empty*) -> Status {
        RETURN_IF_ERROR(ValidateId("container_id", req.container_id()));
        return Annotate(sb->StartContainer(ctx, req.container_id()),
                        StrCat("start container ", req.container_id()));
      });

  d.Add<grpc::RemoveContainerRequest, Empty>(
      "grpc.AgentService/RemoveContainer",
      [sb, storages](CallContext& ctx, const grpc::RemoveContainerRequest& req, Empty*) -> Status {
        RETURN_IF_ERROR(ValidateId("container_id", req.container_id()));
        RETURN_IF_ERROR(
            sb->RemoveContainer(ctx, req.container_id(), std::chrono::seconds(req.timeout())));
        // The container's storages: unmounted when it was their last user (a failure is
        // logged; the container is gone either way).
        (void)storages->Release(req.container_id());
        return absl::OkStatus();
      });

  d.Add<grpc::WaitProcessRequest, grpc::WaitProcessResponse>(
      "grpc.AgentService/WaitProcess",
      [sb](CallContext& ctx, const grpc::WaitProcessRequest& req,
           grpc::WaitProcessResponse* resp) -> Status {
        RETURN_IF_ERROR(ValidateId("container_id", req.container_id()));
        ASSIGN_OR_RETURN(std::shared_ptr<Container> c, sb->Get(req.container_id()));
        ASSIGN_OR_RETURN(int code, c->Wait(ctx, req.exec_id()));
        resp->set_status(code);
        return absl::OkStatus();
      });

  d.Add<grpc::SignalProcessRequest, Empty>(
      "grpc.AgentService/SignalProcess",
      [sb](CallContext&, const grpc::SignalProcessRequest& req, Empty*) -> Status {
        RETURN_IF_ERROR(ValidateId("container_id", req.container_id()));
        ASSIGN_OR_RETURN(std::shared_ptr<Container> c, sb->Get(req.container_id()));
        return c->Signal(req.exec_id(), static_cast<int>(req.signal()));
      });

  d.Add<grpc::WriteStreamRequest, grpc::WriteStreamResponse>(
      "grpc.AgentService/WriteStdin",
      [sb](CallContext& ctx, const grpc::WriteStreamRequest& req,
           grpc::WriteStreamResponse* resp) -> Status {
        ASSIGN_OR_RETURN(std::shared_ptr<Process> p,
                         FindProcess(sb, req.container_id(), req.exec_id()));
        if (!p->stdin_stream()) return absl::FailedPreconditionError("the process has no stdin");
        if (req.data().empty()) {  // upstream: empty data closes stdin
          resp->set_len(0);
          return p->CloseStdin(ctx);
        }
        ASSIGN_OR_RETURN(size_t n, p->stdin_stream()->Write(ctx, req.data()));
        resp->set_len(static_cast<uint32_t>(n));
        return absl::OkStatus();
      });

  auto read = [sb](bool out) {
    return [sb, out](CallContext& ctx, const grpc::ReadStreamRequest& req,
                     grpc::ReadStreamResponse* resp) -> Status {
      std::shared_ptr<Container> c;
      ASSIGN_OR_RETURN(std::shared_ptr<Process> p,
                       FindProcess(sb, req.container_id(), req.exec_id(), &c));
      Stream* s = out ? p->stdout_stream() : p->stderr_stream();
      if (!s)
        return absl::FailedPreconditionError(
            StrCat("the process has no ", out ? "stdout" : "stderr"));
      size_t len = req.len() ? std::min<size_t>(req.len(), kMaxReadLen) : kDefaultReadLen;
      ASSIGN_OR_RETURN(std::string data, s->Read(ctx, len, p->exited_flag()));
      if (data.empty()) c->MaybeRelease(p);  // an exec, waited and drained: forgotten
      resp->set_data(std::move(data));
      return absl::OkStatus();
    };
  };
  d.Add<grpc::ReadStreamRequest, grpc::ReadStreamResponse>("grpc.AgentService/ReadStdout",
                                                           read(true));
  d.Add<grpc::ReadStreamRequest, grpc::ReadStreamResponse>("grpc.AgentService/ReadStderr",
                                                           read(false));

  d.Add<grpc::CloseStdinRequest, Empty>(
      "grpc.AgentService/CloseStdin",
      [sb](CallContext& ctx, const grpc::CloseStdinRequest& req, Empty*) -> Status {
        ASSIGN_OR_RETURN(std::shared_ptr<Process> p,
                         FindProcess(sb, req.container_id(), req.exec_id()));
        return p->CloseStdin(ctx);
      });

  d.Add<grpc::ExecProcessRequest, Empty>(
      "grpc.AgentService/ExecProcess",
      [sb](CallContext& ctx, const grpc::ExecProcessRequest& req, Empty*) -> Status {
        const std::string& cid = req.container_id();
        RETURN_IF_ERROR(ValidateId("container_id", cid));
        RETURN_IF_ERROR(ValidateId("exec_id", req.exec_id()));
        std::string what = StrCat("exec ", req.exec_id(), " in container ", cid);
        if (!req.has_process()) return absl::InvalidArgumentError(what + ": process: missing");
        ProcessSpec parsed;
        if (Status st = ParseProcessSpec(req.process(), &parsed); !st.ok())
          return Annotate(st, what);
        StatusOr<std::optional<UserNames>> names = ParseStringUser(req.string_user());
        if (!names.ok()) return Annotate(names.status(), what);
        ASSIGN_OR_RETURN(std::shared_ptr<Container> c, sb->Get(cid));
        Container::ExecParams ep{req.exec_id(), req.process(), std::move(*names)};
        return Annotate(c->Exec(ctx, std::move(ep)), what);
      });

  d.Add<grpc::TtyWinResizeRequest, Empty>(
      "grpc.AgentService/TtyWinResize",
      [sb](CallContext&, const grpc::TtyWinResizeRequest& req, Empty*) -> Status {
        ASSIGN_OR_RETURN(std::shared_ptr<Process> p,
                         FindProcess(sb, req.container_id(), req.exec_id()));
        return p->ResizeTerminal(req.row(), req.column());
      });
}

}  // namespace kata
