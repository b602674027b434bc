// Storage methods that are not part of a container's or the sandbox's life cycle:
// CopyFile, GetVolumeStats, ResizeVolume, AddSwap, AddSwapPath,
// RemoveStaleVirtiofsShareMounts, UpdateEphemeralMounts.
#include <google/protobuf/empty.pb.h>

#include "agent.pb.h"
#include "csi.pb.h"
#include "service/services.h"
#include "storage/copy_file.h"
#include "storage/drivers.h"
#include "storage/storage.h"
#include "storage/storages.h"
#include "storage/swap.h"
#include "storage/volume.h"

namespace kata {
namespace {

using Empty = google::protobuf::Empty;

// Where the runtime's share is mounted in the guest.
constexpr char kShareDir[] = "/run/kata-containers/shared/containers/";

void SetUsage(grpc::VolumeUsage* u, const VolumeUsage& v, grpc::VolumeUsage::Unit unit) {
  u->set_total(v.total);
  u->set_available(v.available);
  u->set_used(v.used);
  u->set_unit(unit);
}

}  // namespace

void RegisterStorageService(Dispatcher& d, ServiceEnv& env) {
  Storages* st = env.storages;
  // CopyFile writes below the container bundle base (/run/kata-containers), where the
  // share and every bundle live.
  const std::string copy_root = env.config->bundle_dir;

  d.Add<grpc::CopyFileRequest, Empty>(
      "grpc.AgentService/CopyFile",
      [copy_root](CallContext&, const grpc::CopyFileRequest& req, Empty*) -> Status {
        CopyFileChunk c;
        c.path = req.path();
        c.file_size = req.file_size();
        c.file_mode = req.file_mode();
        c.dir_mode = req.dir_mode();
        c.uid = req.uid();
        c.gid = req.gid();
        c.offset = req.offset();
        c.data = req.data();
        return CopyFileChunkTo(copy_root, c);
      });

  d.Add<grpc::VolumeStatsRequest, grpc::VolumeStatsResponse>(
      "grpc.AgentService/GetVolumeStats",
      [](CallContext&, const grpc::VolumeStatsRequest& req,
         grpc::VolumeStatsResponse* resp) -> Status {
        ASSIGN_OR_RETURN(VolumeStats v, GetVolumeStats(req.volume_guest_path()));
        SetUsage(resp->add_usage(), v.bytes, grpc::VolumeUsage::BYTES);
        SetUsage(resp->add_usage(), v.inodes, grpc::VolumeUsage::INODES);
        resp->mutable_volume_condition()->set_abnormal(false);
        resp->mutable_volume_condition()->set_message("OK");
        return absl::OkStatus();
      });

  d.Add<grpc::ResizeVolumeRequest, Empty>(
      "grpc.AgentService/ResizeVolume",
      [st](CallContext& ctx, const grpc::ResizeVolumeRequest& req, Empty*) -> Status {
        return ResizeVolume(ctx, req.volume_guest_path(), req.size(), st->hotplug_timeout());
      });

  d.Add<grpc::AddSwapRequest, Empty>(
      "grpc.AgentService/AddSwap",
      [st](CallContext& ctx, const grpc::AddSwapRequest& req, Empty*) -> Status {
        std::vector<uint32_t> slots(req.pcipath().begin(), req.pcipath().end());
        return AddSwapDevice(ctx, slots, st->hotplug_timeout());
      });

  d.Add<grpc::AddSwapPathRequest, Empty>("grpc.AgentService/AddSwapPath",
                                         [](CallContext&, const grpc::AddSwapPathRequest& req,
                                            Empty*) -> Status { return AddSwapFile(req.path()); });

  d.Add<grpc::RemoveStaleVirtiofsShareMountsRequest, Empty>(
      "grpc.AgentService/RemoveStaleVirtiofsShareMounts",
      [](CallContext&, const grpc::RemoveStaleVirtiofsShareMountsRequest&, Empty*) -> Status {
        TouchShareMounts(kShareDir);
        return absl::OkStatus();
      });

  d.Add<grpc::UpdateEphemeralMountsRequest, Empty>(
      "grpc.AgentService/UpdateEphemeralMounts",
      [](CallContext&, const grpc::UpdateEphemeralMountsRequest& req, Empty*) -> Status {
        std::vector<StorageSpec> specs;
        for (const grpc::Storage& s : req.storages()) {
          ASSIGN_OR_RETURN(StorageSpec spec, ParseStorage(s));
          specs.push_back(std::move(spec));
        }
        return UpdateEphemeralMounts(specs);
      });
}

}  // namespace kata
