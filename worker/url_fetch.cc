#include "worker/url_fetch.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <unistd.h>

#include <cstring>
#include <memory>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/errno_status.h"
#include "common/file_util.h"
#include "common/sha256.h"
#include "common/status_macros.h"
#include "common/unique_fd.h"

namespace longshore::worker {
namespace {

bool V4Allowed(uint32_t host_order) {
  const uint32_t a = host_order;
  if ((a >> 24) == 127) return false;                  // loopback
  if ((a >> 24) == 0) return false;                    // "this network"
  if ((a >> 16) == ((169u << 8) | 254)) return false;  // link-local
  if (a == ((168u << 24) | (63u << 16) | (129u << 8) | 16)) return false;
  if (a == ((100u << 24) | (100u << 16) | (100u << 8) | 200)) return false;
  return true;
}

struct Transfer {
  int fd = -1;
  Sha256* hash = nullptr;
  int64_t size = 0;
  int write_errno = 0;
  std::string refused;  // the address a connection was refused to
};

size_t OnData(char* data, size_t size, size_t n, void* arg) {
  auto* t = static_cast<Transfer*>(arg);
  const size_t total = size * n;
  size_t off = 0;
  while (off < total) {
    ssize_t w = write(t->fd, data + off, total - off);
    if (w < 0) {
      if (errno == EINTR) continue;
      t->write_errno = errno;
      return 0;  // aborts the transfer
    }
    off += static_cast<size_t>(w);
  }
  t->hash->Update(data, total);
  t->size += static_cast<int64_t>(total);
  return total;
}

curl_socket_t OpenSocket(void* arg, curlsocktype, struct curl_sockaddr* a) {
  auto* t = static_cast<Transfer*>(arg);
  if (!AddressAllowed(&a->addr)) {
    char text[INET6_ADDRSTRLEN] = "?";
    if (a->family == AF_INET) {
      inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(&a->addr)->sin_addr,
                text, sizeof(text));
    } else if (a->family == AF_INET6) {
      inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(&a->addr)->sin6_addr,
                text, sizeof(text));
    }
    t->refused = text;
    return CURL_SOCKET_BAD;
  }
  return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

struct CurlDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};

// The last segment of the URL's path, without query or fragment.
std::string FileNameOf(const std::string& url) {
  std::string rest = url.substr(url.find("://") + 3);
  rest = rest.substr(0, rest.find_first_of("?#"));
  const size_t slash = rest.find('/');
  if (slash == std::string::npos) return "";
  const std::string path = rest.substr(slash);
  return path.substr(path.rfind('/') + 1);
}

}  // namespace

bool IsUrlSource(const std::string& source) {
  return absl::StartsWithIgnoreCase(source, "http://") ||
         absl::StartsWithIgnoreCase(source, "https://");
}

bool AddressAllowed(const struct sockaddr* addr) {
  if (addr->sa_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(addr);
    return V4Allowed(ntohl(in->sin_addr.s_addr));
  }
  if (addr->sa_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(addr);
    const uint8_t* b = in6->sin6_addr.s6_addr;
    if (IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr) ||
        IN6_IS_ADDR_LINKLOCAL(&in6->sin6_addr) ||
        IN6_IS_ADDR_UNSPECIFIED(&in6->sin6_addr)) {
      return false;
    }
    if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
      uint32_t v4;
      std::memcpy(&v4, b + 12, 4);
      return V4Allowed(ntohl(v4));
    }
    // AWS's IPv6 metadata endpoint, fd00:ec2::254.
    static const uint8_t kAws[16] = {0xfd, 0x00, 0x0e, 0xc2, 0, 0, 0,    0,
                                     0,    0,    0,    0,    0, 0, 0x02, 0x54};
    return std::memcmp(b, kAws, 16) != 0;
  }
  return false;
}

absl::StatusOr<FetchedUrl> FetchUrl(const std::string& url,
                                    const std::string& dir) {
  static const bool initialized = [] {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    return true;
  }();
  (void)initialized;
  FetchedUrl out;
  out.file_name = FileNameOf(url);
  ASSIGN_OR_RETURN(std::string tmp, MakeTempDir(dir, "add-"));
  out.path = tmp + "/content";
  UniqueFd fd(open(out.path.c_str(),
                   O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
                   0600));
  if (!fd) return ErrnoStatus(errno, "create(%s)", out.path);
  Sha256 hash;
  Transfer t;
  t.fd = fd.get();
  t.hash = &hash;
  std::unique_ptr<CURL, CurlDeleter> curl(curl_easy_init());
  if (!curl) return absl::InternalError("curl_easy_init failed");
  CURL* c = curl.get();
  char error[CURL_ERROR_SIZE] = "";
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_FILETIME, 1L);
  curl_easy_setopt(c, CURLOPT_USERAGENT, "longshore-worker");
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, error);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, OnData);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION, OpenSocket);
  curl_easy_setopt(c, CURLOPT_OPENSOCKETDATA, &t);
  const CURLcode rc = curl_easy_perform(c);
  if (!t.refused.empty()) {
    return absl::PermissionDeniedError(absl::StrCat(
        url, ": refused to connect to ", t.refused,
        " (loopback, link-local and cloud metadata addresses are not reachable "
        "from a build)"));
  }
  if (t.write_errno != 0) {
    return ErrnoStatus(t.write_errno, "write(%s)", out.path);
  }
  if (rc != CURLE_OK) {
    return absl::UnavailableError(absl::StrCat(
        url, ": ", error[0] != '\0' ? error : curl_easy_strerror(rc)));
  }
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  if (status >= 400) {
    return absl::NotFoundError(absl::StrCat(url, ": HTTP ", status));
  }
  curl_off_t filetime = -1;
  if (curl_easy_getinfo(c, CURLINFO_FILETIME_T, &filetime) == CURLE_OK &&
      filetime >= 0) {
    out.last_modified = static_cast<int64_t>(filetime);
  }
  out.digest = hash.Digest();
  out.size = t.size;
  return out;
}

}  // namespace longshore::worker
