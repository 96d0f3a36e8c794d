// JSON text for the web page's API: string quoting that always yields valid
// UTF-8 (step output is arbitrary bytes) and is safe to place in HTML.
#ifndef LONGSHORE_SCHEDULER_WEB_JSON_TEXT_H_
#define LONGSHORE_SCHEDULER_WEB_JSON_TEXT_H_

#include <string>

#include "absl/strings/string_view.h"

namespace longshore::scheduler::web {

// `s` as a JSON string literal, quotes included. Bytes that are not valid
// UTF-8 become U+FFFD; control characters, '<', '>' and '&' are escaped.
std::string JsonQuote(absl::string_view s);

}  // namespace longshore::scheduler::web

#endif  // LONGSHORE_SCHEDULER_WEB_JSON_TEXT_H_
