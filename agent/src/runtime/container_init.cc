#include "runtime/container_init.h"

#include <cstdio>

namespace kata {

int ContainerInitMain(int /*argc*/, char** /*argv*/) {
  fprintf(stderr, "kata-agent init: container set-up mode is not available in this build\n");
  return 127;
}

}  // namespace kata
