// The storage drivers and device types this agent handles (reported by GetGuestDetails).
// Each driver adds its name here when it lands.
namespace kata {

extern const char* const kStorageHandlers[] = {nullptr};
extern const char* const kDeviceHandlers[] = {nullptr};

}  // namespace kata
