// ADD <url>: the worker downloads http(s) sources itself, from its own
// network, so it refuses what a RUN step's network refuses too: loopback,
// link-local (the cloud metadata endpoints) and the other metadata
// addresses, checked at every connection (redirects and DNS answers
// included, so a name that resolves to 127.0.0.1 is refused as well).
#ifndef LONGSHORE_WORKER_URL_FETCH_H_
#define LONGSHORE_WORKER_URL_FETCH_H_

#include <sys/socket.h>

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"

namespace longshore::worker {

struct FetchedUrl {
  std::string path;       // the downloaded file
  std::string file_name;  // last segment of the URL's path ("" when none)
  std::string digest;     // "sha256:<hex>" of the content
  int64_t size = 0;
  // From Last-Modified, in seconds since the epoch, when the server sent it.
  std::optional<int64_t> last_modified;
};

// Downloads `url` (http or https) into a new file under `dir`. Errors name the
// URL: a refused address, the HTTP status of a failed response, or the
// transfer's error.
absl::StatusOr<FetchedUrl> FetchUrl(const std::string& url,
                                    const std::string& dir);

// Whether a download may connect to `addr`: false for loopback, link-local,
// 0.0.0.0/8, 168.63.129.16, 100.100.100.200 and fd00:ec2::254 (and their
// IPv4-mapped IPv6 forms).
bool AddressAllowed(const struct sockaddr* addr);

// True for the sources ADD downloads (http:// and https://).
bool IsUrlSource(const std::string& source);

}  // namespace longshore::worker

#endif  // LONGSHORE_WORKER_URL_FETCH_H_
