#include "service/services.h"

namespace kata {

void RegisterContainerService(Dispatcher& /*d*/, ServiceEnv& /*env*/) {}

}  // namespace kata
