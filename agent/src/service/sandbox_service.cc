#include "service/services.h"

namespace kata {

void RegisterSandboxService(Dispatcher& /*d*/, ServiceEnv& /*env*/) {}

}  // namespace kata
