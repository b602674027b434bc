#include "util/status.h"

#include <cstring>

namespace kata {

std::string ErrnoText(int err) {
  const char* name = strerrorname_np(err);
  const char* desc = strerrordesc_np(err);
  return StrCat(name ? name : StrCat("errno ", err), " (", desc ? desc : "unknown", ")");
}

Status Annotate(const Status& st, std::string_view context) {
  if (st.ok()) return st;
  return Status(st.code(), StrCat(context, ": ", st.message()));
}

}  // namespace kata
