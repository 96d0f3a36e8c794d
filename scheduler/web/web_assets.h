// The web page's files (assets/), compiled into the scheduler so it needs
// nothing on disk and loads nothing from elsewhere.
#ifndef LONGSHORE_SCHEDULER_WEB_WEB_ASSETS_H_
#define LONGSHORE_SCHEDULER_WEB_WEB_ASSETS_H_

#include "absl/strings/string_view.h"

namespace longshore::scheduler::web {

struct WebAsset {
  const char* path;  // e.g. "/app.js"
  const char* content_type;
  absl::string_view body;
};

// The asset at `path`, or null.
const WebAsset* FindWebAsset(absl::string_view path);

}  // namespace longshore::scheduler::web

#endif  // LONGSHORE_SCHEDULER_WEB_WEB_ASSETS_H_
