// What the vhost-user layer needs from the device it serves. The vhost-user session owns the
// guest memory and the queues; the device sees them through Attach and is told when they
// change. Everything runs on one thread, the event loop's.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "guest_memory.h"
#include "virtqueue.h"

namespace kata::vsock {

class VirtioDevice {
 public:
  virtual ~VirtioDevice() = default;

  // Device-specific virtio feature bits offered (ring and transport bits are the session's).
  virtual uint64_t DeviceFeatures() const = 0;
  virtual size_t NumQueues() const = 0;
  // The device configuration space.
  virtual std::vector<uint8_t> Config() const = 0;

  // The memory and queues live as long as the session object; called once.
  virtual void Attach(const GuestMemory* mem, std::vector<Virtqueue>* queues) = 0;
  // The driver added buffers to queue `index` (its kick fd fired).
  virtual void QueueKicked(size_t index) = 0;
  // A queue started, stopped, was enabled or disabled, or the memory table changed.
  virtual void QueuesChanged() = 0;
  // The guest's device state is gone (front-end disconnected, or the driver reset the
  // device): forget every connection.
  virtual void Reset(std::string_view why) = 0;
};

}  // namespace kata::vsock
