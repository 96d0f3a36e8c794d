#include "image/registry_client.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <mutex>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/errno_status.h"
#include "common/file_util.h"
#include "common/log.h"
#include "common/sha256.h"
#include "common/status_macros.h"
#include "common/unique_fd.h"
#include "image/registry_parse.h"
#include "nlohmann/json.hpp"

namespace longshore::image {

// ---------------------------------------------------------------------------
// Implementation types.

struct RegistryClient::Request {
  std::string method = "GET";
  // "/v2/..." on the registry's API host, or an absolute URL (an upload
  // Location).
  std::string target;
  std::vector<std::string> headers;
  // Request body: from memory, or `body_length` bytes of `body_fd` from
  // `body_offset`. No body when has_body is false.
  bool has_body = false;
  absl::string_view body;
  int body_fd = -1;
  int64_t body_offset = 0;
  int64_t body_length = 0;
  // Blob transfers get blob_timeout and a stall limit instead of
  // request_timeout.
  bool blob_transfer = false;
  // Whether Send may repeat the request on 429/5xx/connection errors.
  bool retryable = true;
  // Largest response body kept in Response::body.
  int64_t max_body = 1 << 20;
  // For messages: "GET manifest latest".
  std::string what;
};

struct RegistryClient::Response {
  long status = 0;
  std::vector<std::pair<std::string, std::string>> headers;  // names lower
  std::string body;
  std::string url;

  std::string Header(absl::string_view name) const {
    for (const auto& [k, v] : headers) {
      if (k == name) return v;
    }
    return "";
  }
  std::vector<std::string> AllHeaders(absl::string_view name) const {
    std::vector<std::string> out;
    for (const auto& [k, v] : headers) {
      if (k == name) out.push_back(v);
    }
    return out;
  }
};

// Receives the body of a 2xx response. Reset() is called before every attempt.
class RegistryClient::BodySink {
 public:
  virtual ~BodySink() = default;
  virtual absl::Status Reset() = 0;
  // false aborts the transfer; status() then says why.
  virtual bool Write(const char* data, size_t n) = 0;
  virtual absl::Status status() const = 0;
};

struct RegistryClient::Host {
  std::string registry;  // as in references: "docker.io", "127.0.0.1:5000"
  std::string api_host;  // where requests go: "registry-1.docker.io"
  bool insecure = false;
  std::string ca_file;
  std::optional<RegistryCredential> credential;

  struct Token {
    std::string value;
    absl::Time expires;
  };
  absl::Mutex mu;
  // "https" or "http"; empty while unknown for an insecure registry (https is
  // tried first, plain HTTP when the TLS handshake fails).
  std::string scheme ABSL_GUARDED_BY(mu);
  // The registry asked for Basic credentials; send them up front from now on.
  bool basic ABSL_GUARDED_BY(mu) = false;
  std::map<std::string, Token> tokens ABSL_GUARDED_BY(mu);  // by scope key
};

namespace {

constexpr char kHubRegistry[] = "docker.io";
constexpr char kHubApiHost[] = "registry-1.docker.io";

using Response = RegistryClient::Response;
using Request = RegistryClient::Request;
using BodySink = RegistryClient::BodySink;

struct CurlDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct SlistDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};

void GlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

std::string Escape(absl::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      absl::StrAppend(&out, absl::StrFormat("%%%02X", c));
    }
  }
  return out;
}

bool IsLoopback(absl::string_view registry) {
  absl::string_view host = registry;
  if (absl::StartsWith(host, "[")) {
    size_t end = host.find(']');
    host =
        host.substr(0, end == absl::string_view::npos ? host.size() : end + 1);
  } else {
    host = host.substr(0, host.find(':'));
  }
  return host == "localhost" || host == "127.0.0.1" || host == "[::1]" ||
         absl::StartsWith(host, "127.");
}

std::string ScopeKey(std::vector<std::string> scopes) {
  std::sort(scopes.begin(), scopes.end());
  return absl::StrJoin(scopes, " ");
}

std::string PullScope(const Reference& repo) {
  return absl::StrCat("repository:", repo.repository, ":pull");
}
std::string PushScope(const Reference& repo) {
  return absl::StrCat("repository:", repo.repository, ":pull,push");
}

std::string StatusText(long status) {
  switch (status) {
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 204:
      return "No Content";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 409:
      return "Conflict";
    case 413:
      return "Payload Too Large";
    case 416:
      return "Range Not Satisfiable";
    case 429:
      return "Too Many Requests";
    case 500:
      return "Internal Server Error";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    default:
      return "";
  }
}

absl::StatusCode CodeForHttp(long status) {
  if (status == 401) return absl::StatusCode::kUnauthenticated;
  if (status == 403) return absl::StatusCode::kPermissionDenied;
  if (status == 404) return absl::StatusCode::kNotFound;
  if (status == 429) return absl::StatusCode::kResourceExhausted;
  if (status == 409) return absl::StatusCode::kAborted;
  if (status >= 500) return absl::StatusCode::kUnavailable;
  if (status >= 400) return absl::StatusCode::kInvalidArgument;
  return absl::StatusCode::kInternal;
}

std::string Prefix(const Reference& repo) {
  return absl::StrCat("registry ", repo.registry, ", repository ",
                      repo.repository);
}

absl::Status HttpError(const Reference& repo, const Request& req,
                       const Response& resp, absl::string_view hint = "") {
  std::string msg =
      absl::StrCat(Prefix(repo), ": ", req.what, ": HTTP ", resp.status);
  std::string text = StatusText(resp.status);
  if (!text.empty()) absl::StrAppend(&msg, " ", text);
  std::string errors = RegistryErrorSummary(resp.body);
  if (!errors.empty()) absl::StrAppend(&msg, ": ", errors);
  if (!hint.empty()) absl::StrAppend(&msg, " (", hint, ")");
  return absl::Status(CodeForHttp(resp.status), msg);
}

absl::Status WithPrefix(const Reference& repo, const Request& req,
                        const absl::Status& s) {
  return absl::Status(
      s.code(), absl::StrCat(Prefix(repo), ": ", req.what, ": ", s.message()));
}

// Transport errors that a later attempt may not meet.
bool RetryableTransport(CURLcode rc) {
  switch (rc) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
      return true;
    default:
      return false;
  }
}

// A TLS handshake failure against a registry that may speak plain HTTP.
bool TlsHandshakeFailure(CURLcode rc) {
  return rc == CURLE_SSL_CONNECT_ERROR || rc == CURLE_RECV_ERROR ||
         rc == CURLE_GOT_NOTHING || rc == CURLE_SEND_ERROR;
}

// Collects everything curl tells about one attempt.
struct Exchange {
  Response* resp;
  BodySink* sink;
  int64_t max_body;
  bool body_too_large = false;
  CURL* curl;
  // Request body state.
  absl::string_view mem;
  int fd = -1;
  int64_t offset = 0;
  int64_t remaining = 0;
  int read_errno = 0;
};

size_t OnHeader(char* data, size_t size, size_t n, void* user) {
  auto* ex = static_cast<Exchange*>(user);
  absl::string_view line(data, size * n);
  line = absl::StripTrailingAsciiWhitespace(line);
  if (absl::StartsWith(line, "HTTP/")) {
    ex->resp->headers.clear();  // a new response (after 100 or a redirect)
    return size * n;
  }
  size_t colon = line.find(':');
  if (colon != absl::string_view::npos) {
    std::string name = absl::AsciiStrToLower(line.substr(0, colon));
    std::string value(absl::StripAsciiWhitespace(line.substr(colon + 1)));
    ex->resp->headers.emplace_back(std::move(name), std::move(value));
  }
  return size * n;
}

size_t OnBody(char* data, size_t size, size_t n, void* user) {
  auto* ex = static_cast<Exchange*>(user);
  size_t len = size * n;
  long code = 0;
  curl_easy_getinfo(ex->curl, CURLINFO_RESPONSE_CODE, &code);
  if (code >= 200 && code < 300 && ex->sink != nullptr) {
    return ex->sink->Write(data, len) ? len : 0;
  }
  if (static_cast<int64_t>(ex->resp->body.size() + len) > ex->max_body) {
    ex->body_too_large = true;
    return 0;
  }
  ex->resp->body.append(data, len);
  return len;
}

size_t OnRead(char* buf, size_t size, size_t n, void* user) {
  auto* ex = static_cast<Exchange*>(user);
  size_t want = size * n;
  if (ex->fd < 0) {
    size_t k = std::min(want, ex->mem.size());
    memcpy(buf, ex->mem.data(), k);
    ex->mem.remove_prefix(k);
    return k;
  }
  if (ex->remaining <= 0) return 0;
  size_t k = static_cast<size_t>(
      std::min<int64_t>(static_cast<int64_t>(want), ex->remaining));
  ssize_t r;
  do {
    r = pread(ex->fd, buf, k, ex->offset);
  } while (r < 0 && errno == EINTR);
  if (r < 0) {
    ex->read_errno = errno;
    return CURL_READFUNC_ABORT;
  }
  if (r == 0) {
    ex->read_errno = EIO;  // the file shrank under us
    return CURL_READFUNC_ABORT;
  }
  ex->offset += r;
  ex->remaining -= r;
  return static_cast<size_t>(r);
}

// Writes a download to a file while hashing it and bounding its size.
class FileSink : public BodySink {
 public:
  FileSink(int fd, int64_t expected_size, std::string name)
      : fd_(fd), expected_(expected_size), name_(std::move(name)) {}
  absl::Status Reset() override {
    if (ftruncate(fd_, 0) != 0)
      return ErrnoStatus(errno, "ftruncate(%s)", name_);
    if (lseek(fd_, 0, SEEK_SET) != 0) {
      return ErrnoStatus(errno, "lseek(%s)", name_);
    }
    sha_ = std::make_unique<Sha256>();
    bytes_ = 0;
    status_ = absl::OkStatus();
    return absl::OkStatus();
  }
  bool Write(const char* data, size_t n) override {
    if (expected_ > 0 && bytes_ + static_cast<int64_t>(n) > expected_) {
      status_ = absl::DataLossError(
          absl::StrCat("blob ", name_, " is longer than its descriptor's ",
                       expected_, " bytes; refusing it"));
      return false;
    }
    sha_->Update(data, n);
    bytes_ += static_cast<int64_t>(n);
    while (n > 0) {
      ssize_t w = write(fd_, data, n);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) {
        status_ = ErrnoStatus(errno, "write(%s)", name_);
        return false;
      }
      data += w;
      n -= static_cast<size_t>(w);
    }
    return true;
  }
  absl::Status status() const override { return status_; }
  int64_t bytes() const { return bytes_; }
  std::string Digest() { return sha_->Digest(); }

 private:
  int fd_;
  int64_t expected_;
  std::string name_;
  std::unique_ptr<Sha256> sha_ = std::make_unique<Sha256>();
  int64_t bytes_ = 0;
  absl::Status status_;
};

// Keeps a body in memory, bounded.
class StringSink : public BodySink {
 public:
  StringSink(int64_t max, std::string name)
      : max_(max), name_(std::move(name)) {}
  absl::Status Reset() override {
    data_.clear();
    status_ = absl::OkStatus();
    return absl::OkStatus();
  }
  bool Write(const char* d, size_t n) override {
    if (static_cast<int64_t>(data_.size() + n) > max_) {
      status_ = absl::DataLossError(absl::StrCat(
          name_, " is larger than the limit of ", max_, " bytes; refusing it"));
      return false;
    }
    data_.append(d, n);
    return true;
  }
  absl::Status status() const override { return status_; }
  std::string& data() { return data_; }

 private:
  int64_t max_;
  std::string name_;
  std::string data_;
  absl::Status status_;
};

std::string MediaTypeOf(const Response& resp) {
  std::string ct = resp.Header("content-type");
  size_t semi = ct.find(';');
  if (semi != std::string::npos) ct.resize(semi);
  return std::string(absl::StripAsciiWhitespace(ct));
}

std::string AddQuery(absl::string_view url, absl::string_view key,
                     absl::string_view value) {
  return absl::StrCat(url, absl::StrContains(url, '?') ? "&" : "?", key, "=",
                      Escape(value));
}

absl::Duration RetryAfter(const Response& resp) {
  std::string v = resp.Header("retry-after");
  if (v.empty()) return absl::ZeroDuration();
  int64_t secs;
  if (absl::SimpleAtoi(v, &secs))
    return absl::Seconds(std::max<int64_t>(0, secs));
  time_t when = curl_getdate(v.c_str(), nullptr);
  if (when < 0) return absl::ZeroDuration();
  absl::Duration d = absl::FromUnixSeconds(when) - absl::Now();
  return d > absl::ZeroDuration() ? d : absl::ZeroDuration();
}

bool IsRetryableCode(absl::StatusCode code) {
  return code == absl::StatusCode::kUnavailable ||
         code == absl::StatusCode::kDeadlineExceeded ||
         code == absl::StatusCode::kResourceExhausted;
}

}  // namespace

// ---------------------------------------------------------------------------
// Credentials and challenges.

std::string NormalizeRegistryHost(absl::string_view server) {
  absl::string_view s = absl::StripAsciiWhitespace(server);
  if (!absl::ConsumePrefix(&s, "https://")) absl::ConsumePrefix(&s, "http://");
  s = s.substr(0, s.find('/'));
  std::string host = absl::AsciiStrToLower(s);
  if (host == "index.docker.io" || host == "registry-1.docker.io" ||
      host == "registry.hub.docker.com") {
    return kHubRegistry;
  }
  return host;
}

std::string DefaultDockerConfigPath() {
  const char* dir = getenv("DOCKER_CONFIG");
  if (dir != nullptr && *dir != '\0') return absl::StrCat(dir, "/config.json");
  const char* home = getenv("HOME");
  return absl::StrCat(home != nullptr ? home : "", "/.docker/config.json");
}

absl::Status LoadDockerConfigCredentials(
    const std::string& path,
    std::map<std::string, RegistryCredential>* credentials) {
  if (!PathExists(path)) {
    return absl::NotFoundError(
        absl::StrCat("docker config ", path, " does not exist"));
  }
  ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat("docker config ", path, ": not a JSON object"));
  }
  auto auths = j.find("auths");
  if (auths == j.end()) return absl::OkStatus();
  if (!auths->is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat("docker config ", path, ": \"auths\" is not an object"));
  }
  for (const auto& [server, entry] : auths->items()) {
    if (!entry.is_object()) continue;
    RegistryCredential cred;
    // A field of another type is an error naming it (Json::value would
    // throw).
    auto field = [&](const char* key, std::string* out) -> absl::Status {
      auto it = entry.find(key);
      if (it == entry.end() || it->is_null()) return absl::OkStatus();
      if (!it->is_string()) {
        return absl::InvalidArgumentError(
            absl::StrCat("docker config ", path, ": auths[\"", server, "\"].",
                         key, " is not a string"));
      }
      *out = it->get<std::string>();
      return absl::OkStatus();
    };
    std::string auth;
    RETURN_IF_ERROR(field("auth", &auth));
    if (!auth.empty()) {
      std::string decoded;
      if (!absl::Base64Unescape(auth, &decoded)) {
        return absl::InvalidArgumentError(
            absl::StrCat("docker config ", path, ": auths[\"", server,
                         "\"].auth is not base64"));
      }
      size_t colon = decoded.find(':');
      if (colon == std::string::npos) {
        return absl::InvalidArgumentError(
            absl::StrCat("docker config ", path, ": auths[\"", server,
                         "\"].auth is not base64(\"user:password\")"));
      }
      cred.username = decoded.substr(0, colon);
      cred.password = decoded.substr(colon + 1);
    } else {
      RETURN_IF_ERROR(field("username", &cred.username));
      RETURN_IF_ERROR(field("password", &cred.password));
    }
    if (cred.username.empty() && cred.password.empty()) continue;
    credentials->emplace(NormalizeRegistryHost(server), std::move(cred));
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// The client.

RegistryClient::RegistryClient(RegistryOptions options)
    : options_(std::move(options)) {
  GlobalInit();
}

RegistryClient::~RegistryClient() = default;

RegistryClient::Host& RegistryClient::HostFor(absl::string_view registry) {
  std::string key = NormalizeRegistryHost(registry);
  absl::MutexLock lock(&mu_);
  auto it = hosts_.find(key);
  if (it != hosts_.end()) return *it->second;
  auto h = std::make_unique<Host>();
  h->registry = key;
  h->api_host = key == kHubRegistry ? kHubApiHost : key;
  h->insecure = IsLoopback(key);
  for (const std::string& r : options_.insecure_registries) {
    if (NormalizeRegistryHost(r) == key) h->insecure = true;
  }
  auto ca = options_.ca_files.find(key);
  h->ca_file = ca != options_.ca_files.end() ? ca->second : options_.ca_file;
  auto cred = options_.credentials.find(key);
  if (cred != options_.credentials.end()) h->credential = cred->second;
  {
    absl::MutexLock host_lock(&h->mu);
    h->scheme = h->insecure ? "" : "https";
  }
  Host& ref = *h;
  hosts_.emplace(key, std::move(h));
  return ref;
}

absl::StatusOr<Response> RegistryClient::PerformOnce(Host& host, Request& req,
                                                     BodySink* sink) {
  std::string scheme;
  {
    absl::MutexLock lock(&host.mu);
    scheme = host.scheme;
  }
  bool probing = scheme.empty();
  if (probing) scheme = "https";
  bool absolute = absl::StartsWith(req.target, "http://") ||
                  absl::StartsWith(req.target, "https://");
  std::string url =
      absolute ? req.target
               : absl::StrCat(scheme, "://", host.api_host, req.target);
  std::unique_ptr<CURL, CurlDeleter> curl(curl_easy_init());
  if (!curl) return absl::InternalError("curl_easy_init failed");
  CURL* c = curl.get();
  Response resp;
  Exchange ex{&resp, sink, req.max_body};
  ex.curl = c;
  if (req.has_body) {
    if (req.body_fd >= 0) {
      ex.fd = req.body_fd;
      ex.offset = req.body_offset;
      ex.remaining = req.body_length;
    } else {
      ex.mem = req.body;
    }
  }
  int64_t body_len = req.body_fd >= 0 ? req.body_length
                                      : static_cast<int64_t>(req.body.size());

  std::unique_ptr<curl_slist, SlistDeleter> headers;
  auto add_header = [&](const std::string& h) {
    headers.reset(curl_slist_append(headers.release(), h.c_str()));
  };
  for (const std::string& h : req.headers) add_header(h);
  add_header("Expect:");  // no 100-continue round trip

  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_USERAGENT, options_.user_agent.c_str());
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(
      c, CURLOPT_CONNECTTIMEOUT_MS,
      static_cast<long>(absl::ToInt64Milliseconds(options_.connect_timeout)));
  if (req.blob_transfer) {
    curl_easy_setopt(
        c, CURLOPT_TIMEOUT_MS,
        static_cast<long>(absl::ToInt64Milliseconds(options_.blob_timeout)));
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1024L);
    curl_easy_setopt(
        c, CURLOPT_LOW_SPEED_TIME,
        static_cast<long>(absl::ToInt64Seconds(options_.stall_timeout)));
  } else {
    curl_easy_setopt(
        c, CURLOPT_TIMEOUT_MS,
        static_cast<long>(absl::ToInt64Milliseconds(options_.request_timeout)));
  }
  if (host.insecure) {
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  if (!host.ca_file.empty()) {
    curl_easy_setopt(c, CURLOPT_CAINFO, host.ca_file.c_str());
  }
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, OnHeader);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &ex);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, OnBody);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &ex);
  curl_easy_setopt(c, CURLOPT_READFUNCTION, OnRead);
  curl_easy_setopt(c, CURLOPT_READDATA, &ex);

  if (req.method == "GET" || req.method == "HEAD") {
    // Blob GETs are commonly redirected to object storage; curl drops our
    // Authorization header when the redirect leaves the host.
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
    if (req.method == "HEAD") curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  } else if (req.method == "POST") {
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
                     static_cast<curl_off_t>(req.has_body ? body_len : 0));
    if (!req.has_body) curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
  } else {
    // PUT and PATCH upload a body (possibly empty).
    curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE,
                     static_cast<curl_off_t>(req.has_body ? body_len : 0));
    if (req.method != "PUT") {
      curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, req.method.c_str());
    }
  }
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
  char errbuf[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);

  LS_LOG(DEBUG) << "registry " << req.method << " " << url;
  CURLcode rc = curl_easy_perform(c);
  if (rc != CURLE_OK) {
    if (sink != nullptr && !sink->status().ok()) return sink->status();
    if (ex.body_too_large) {
      return absl::DataLossError(
          absl::StrCat("response body larger than ", req.max_body, " bytes"));
    }
    if (ex.read_errno != 0) {
      return ErrnoStatus(ex.read_errno, "read(request body)");
    }
    if (probing && !absolute && TlsHandshakeFailure(rc)) {
      // An insecure registry that does not speak TLS: use plain HTTP from now
      // on, as Docker does for registries named insecure.
      {
        absl::MutexLock lock(&host.mu);
        host.scheme = "http";
      }
      LS_LOG(DEBUG) << "registry " << host.registry
                    << ": TLS handshake failed, using plain HTTP";
      if (sink != nullptr) RETURN_IF_ERROR(sink->Reset());
      return PerformOnce(host, req, sink);
    }
    std::string detail = errbuf[0] != '\0' ? errbuf : curl_easy_strerror(rc);
    absl::StatusCode code =
        rc == CURLE_OPERATION_TIMEDOUT ? absl::StatusCode::kDeadlineExceeded
        : RetryableTransport(rc)       ? absl::StatusCode::kUnavailable
                                       : absl::StatusCode::kFailedPrecondition;
    return absl::Status(code, absl::StrCat(req.method, " ", url, ": ", detail));
  }
  if (probing && !absolute) {
    absl::MutexLock lock(&host.mu);
    if (host.scheme.empty()) host.scheme = "https";
  }
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp.status);
  char* effective = nullptr;
  curl_easy_getinfo(c, CURLINFO_EFFECTIVE_URL, &effective);
  resp.url = effective != nullptr ? effective : url;
  return resp;
}

std::string RegistryClient::AuthorizationFor(
    Host& host, const std::vector<std::string>& scopes) {
  absl::MutexLock lock(&host.mu);
  auto it = host.tokens.find(ScopeKey(scopes));
  if (it != host.tokens.end() && it->second.expires > absl::Now()) {
    return absl::StrCat("Authorization: Bearer ", it->second.value);
  }
  if (host.basic && host.credential) {
    return absl::StrCat(
        "Authorization: Basic ",
        absl::Base64Escape(absl::StrCat(host.credential->username, ":",
                                        host.credential->password)));
  }
  return "";
}

absl::Status RegistryClient::Authenticate(
    Host& host, const Reference& repo, const std::vector<std::string>& scopes,
    const Response& challenge_response) {
  std::optional<AuthChallenge> bearer, basic;
  for (const std::string& h :
       challenge_response.AllHeaders("www-authenticate")) {
    auto c = ParseAuthChallenge(h);
    if (!c.ok())
      return absl::UnauthenticatedError(
          absl::StrCat(Prefix(repo), ": ", c.status().message()));
    if (c->scheme == "bearer" && !bearer) bearer = *c;
    if (c->scheme == "basic" && !basic) basic = *c;
  }
  if (!bearer && !basic) {
    return absl::UnauthenticatedError(absl::StrCat(
        Prefix(repo),
        ": HTTP 401 Unauthorized without a Basic or Bearer challenge"));
  }
  if (!bearer) {
    if (!host.credential) {
      return absl::UnauthenticatedError(
          absl::StrCat(Prefix(repo),
                       ": HTTP 401 Unauthorized: the registry wants Basic "
                       "credentials and none are configured for ",
                       host.registry));
    }
    absl::MutexLock lock(&host.mu);
    if (host.basic) {
      return absl::UnauthenticatedError(
          absl::StrCat(Prefix(repo),
                       ": HTTP 401 Unauthorized: the registry rejected the "
                       "credentials of user \"",
                       host.credential->username, "\""));
    }
    host.basic = true;
    return absl::OkStatus();
  }

  // Bearer: ask the token service named by the challenge.
  std::string realm = bearer->params["realm"];
  if (!absl::StartsWith(realm, "https://") &&
      !absl::StartsWith(realm, "http://")) {
    return absl::UnauthenticatedError(absl::StrCat(
        Prefix(repo), ": Bearer challenge with an unusable realm \"", realm,
        "\""));
  }
  std::vector<std::string> want = scopes;
  auto cs = bearer->params.find("scope");
  if (cs != bearer->params.end() && !cs->second.empty()) {
    for (absl::string_view s : absl::StrSplit(cs->second, ' ')) {
      if (std::find(want.begin(), want.end(), s) == want.end()) {
        want.emplace_back(s);
      }
    }
  }
  std::string url = realm;
  auto service = bearer->params.find("service");
  if (service != bearer->params.end()) {
    url = AddQuery(url, "service", service->second);
  }
  for (const std::string& s : want) url = AddQuery(url, "scope", s);

  Host& realm_host = HostFor(HostOfUrl(realm));
  Request treq;
  treq.method = "GET";
  treq.target = url;
  treq.what = absl::StrCat("GET token from ", realm);
  if (host.credential) {
    treq.headers.push_back(absl::StrCat(
        "Authorization: Basic ",
        absl::Base64Escape(absl::StrCat(host.credential->username, ":",
                                        host.credential->password))));
  }
  absl::Duration backoff = options_.initial_backoff;
  absl::StatusOr<Response> r;
  for (int attempt = 0;; ++attempt) {
    r = PerformOnce(realm_host, treq, nullptr);
    bool transient = r.ok() ? (r->status == 429 || r->status >= 500)
                            : IsRetryableCode(r.status().code());
    if (!transient || attempt >= options_.max_retries) break;
    absl::SleepFor(backoff);
    backoff = std::min(backoff * 2, options_.max_backoff);
  }
  if (!r.ok()) return WithPrefix(repo, treq, r.status());
  if (r->status != 200) {
    return HttpError(repo, treq, *r,
                     host.credential
                         ? absl::StrCat("credentials of user \"",
                                        host.credential->username, "\"")
                         : "anonymous");
  }
  absl::StatusOr<TokenResponse> t = ParseTokenResponse(r->body);
  if (!t.ok()) {
    return absl::UnauthenticatedError(absl::StrCat(
        Prefix(repo), ": from ", realm, ": ", t.status().message()));
  }
  const std::string& token = t->token;
  int64_t expires_in = t->expires_in_seconds;
  absl::MutexLock lock(&host.mu);
  // Renew a little early so a token never expires in flight.
  host.tokens[ScopeKey(scopes)] = Host::Token{
      token, absl::Now() + absl::Seconds(expires_in) -
                 std::min(absl::Seconds(10), absl::Seconds(expires_in) / 2)};
  return absl::OkStatus();
}

absl::StatusOr<Response> RegistryClient::Send(
    const Reference& repo, Request& req, const std::vector<std::string>& scopes,
    BodySink* sink) {
  Host& host = HostFor(repo.registry);
  absl::Duration backoff = options_.initial_backoff;
  bool authenticated = false;
  int attempt = 0;
  const std::vector<std::string> base_headers = req.headers;
  while (true) {
    req.headers = base_headers;
    std::string auth = AuthorizationFor(host, scopes);
    if (!auth.empty()) req.headers.push_back(auth);
    if (sink != nullptr) RETURN_IF_ERROR(sink->Reset());
    absl::StatusOr<Response> r = PerformOnce(host, req, sink);
    req.headers = base_headers;
    if (!r.ok()) {
      if (req.retryable && IsRetryableCode(r.status().code()) &&
          attempt < options_.max_retries) {
        LS_LOG(DEBUG) << Prefix(repo) << ": " << req.what << ": "
                      << r.status().message() << "; retrying in " << backoff;
        absl::SleepFor(backoff);
        backoff = std::min(backoff * 2, options_.max_backoff);
        ++attempt;
        continue;
      }
      return WithPrefix(repo, req, r.status());
    }
    if (r->status == 401) {
      if (authenticated) {
        std::string hint;
        if (host.credential) {
          hint = absl::StrCat("credentials of user \"",
                              host.credential->username, "\" rejected");
        } else {
          hint = "no credentials configured";
        }
        return HttpError(repo, req, *r, hint);
      }
      authenticated = true;
      RETURN_IF_ERROR(Authenticate(host, repo, scopes, *r));
      continue;
    }
    if ((r->status == 429 || r->status >= 500) && req.retryable &&
        attempt < options_.max_retries) {
      absl::Duration wait = backoff;
      absl::Duration after = RetryAfter(*r);
      if (after > absl::ZeroDuration()) {
        wait = std::min(after, options_.max_retry_after);
      }
      LS_LOG(DEBUG) << Prefix(repo) << ": " << req.what << ": HTTP "
                    << r->status << "; retrying in " << wait;
      absl::SleepFor(wait);
      backoff = std::min(backoff * 2, options_.max_backoff);
      ++attempt;
      continue;
    }
    return r;
  }
}

// ---------------------------------------------------------------------------
// Pull.

absl::StatusOr<RegistryClient::RawManifest> RegistryClient::GetManifest(
    const Reference& ref) {
  std::string which = ref.digest.empty() ? ref.tag : ref.digest;
  if (which.empty()) which = "latest";
  Request req;
  req.method = "GET";
  req.target = absl::StrCat("/v2/", ref.repository, "/manifests/", which);
  req.what = absl::StrCat("GET manifest ", which);
  req.max_body = options_.max_manifest_bytes;
  req.headers.push_back(absl::StrCat(
      "Accept: ", kMediaTypeOciManifest, ", ", kMediaTypeOciIndex, ", ",
      kMediaTypeDockerManifest, ", ", kMediaTypeDockerManifestList));
  StringSink sink(options_.max_manifest_bytes,
                  absl::StrCat("manifest ", which));
  ASSIGN_OR_RETURN(Response resp, Send(ref, req, {PullScope(ref)}, &sink));
  if (resp.status != 200) return HttpError(ref, req, resp);

  RawManifest out;
  out.bytes = std::move(sink.data());
  std::string digest = Sha256Digest(out.bytes);
  if (!ref.digest.empty() && digest != ref.digest) {
    return absl::DataLossError(absl::StrCat(Prefix(ref), ": ", req.what,
                                            ": content hashes to ", digest,
                                            "; refusing it"));
  }
  std::string header = resp.Header("docker-content-digest");
  if (!header.empty() && IsValidDigest(header) && header != digest) {
    return absl::DataLossError(absl::StrCat(
        Prefix(ref), ": ", req.what, ": content hashes to ", digest,
        " but the registry says ", header, "; refusing it"));
  }
  std::string media_type = MediaTypeOf(resp);
  if (!IsManifestMediaType(media_type) && !IsIndexMediaType(media_type)) {
    // Some registries answer application/json; the document says what it is.
    std::string declared = DeclaredManifestMediaType(out.bytes);
    if (declared.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          Prefix(ref), ": ", req.what, ": unsupported media type \"",
          media_type, "\" (schema 1 and artifacts are not images)"));
    }
    media_type = declared;
  }
  out.descriptor.media_type = media_type;
  out.descriptor.digest = digest;
  out.descriptor.size = static_cast<int64_t>(out.bytes.size());
  return out;
}

absl::StatusOr<ResolvedManifest> RegistryClient::ResolveManifest(
    const Reference& ref) {
  Platform p;
  p.os = "linux";
  p.architecture = "amd64";
  return ResolveManifest(ref, p);
}

absl::StatusOr<ResolvedManifest> RegistryClient::ResolveManifest(
    const Reference& ref, const Platform& platform) {
  ASSIGN_OR_RETURN(RawManifest raw, GetManifest(ref));
  ResolvedManifest out;
  if (IsIndexMediaType(raw.descriptor.media_type)) {
    auto index = ParseIndex(raw.bytes);
    if (!index.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(Prefix(ref), ": index ", raw.descriptor.digest, ": ",
                       index.status().message()));
    }
    auto chosen = SelectPlatform(*index, platform);
    if (!chosen.ok()) {
      return absl::NotFoundError(
          absl::StrCat(Prefix(ref), ": ", chosen.status().message()));
    }
    out.index = raw.descriptor;
    out.index_bytes = std::move(raw.bytes);
    Reference child = ref;
    child.tag.clear();
    child.digest = chosen->digest;
    ASSIGN_OR_RETURN(raw, GetManifest(child));
    if (!IsManifestMediaType(raw.descriptor.media_type)) {
      return absl::InvalidArgumentError(
          absl::StrCat(Prefix(ref), ": index entry ", chosen->digest, " is a ",
                       raw.descriptor.media_type, ", not an image manifest"));
    }
    raw.descriptor.platform = chosen->platform;
  }
  auto manifest = ParseManifest(raw.bytes);
  if (!manifest.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(Prefix(ref), ": manifest ", raw.descriptor.digest, ": ",
                     manifest.status().message()));
  }
  out.descriptor = raw.descriptor;
  out.bytes = std::move(raw.bytes);
  out.manifest = std::move(*manifest);
  if (out.manifest.config.size > options_.max_config_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        Prefix(ref), ": config ", out.manifest.config.digest, " claims ",
        out.manifest.config.size, " bytes, more than the limit of ",
        options_.max_config_bytes));
  }
  ASSIGN_OR_RETURN(out.config_bytes, GetBlob(ref, out.manifest.config.digest,
                                             out.manifest.config.size > 0
                                                 ? out.manifest.config.size
                                                 : options_.max_config_bytes));
  auto config = ParseConfig(out.config_bytes);
  if (!config.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(Prefix(ref), ": config ", out.manifest.config.digest, ": ",
                     config.status().message()));
  }
  out.config = std::move(*config);
  return out;
}

absl::StatusOr<bool> RegistryClient::HasBlob(const Reference& repo,
                                             absl::string_view digest) {
  if (!IsValidDigest(digest)) {
    return absl::InvalidArgumentError(absl::StrCat("invalid digest ", digest));
  }
  Request req;
  req.method = "HEAD";
  req.target = absl::StrCat("/v2/", repo.repository, "/blobs/", digest);
  req.what = absl::StrCat("HEAD blob ", digest);
  ASSIGN_OR_RETURN(Response resp, Send(repo, req, {PullScope(repo)}, nullptr));
  if (resp.status == 200) return true;
  if (resp.status == 404) return false;
  return HttpError(repo, req, resp);
}

absl::StatusOr<std::string> RegistryClient::GetBlob(const Reference& repo,
                                                    absl::string_view digest,
                                                    int64_t max_bytes) {
  if (!IsValidDigest(digest)) {
    return absl::InvalidArgumentError(absl::StrCat("invalid digest ", digest));
  }
  Request req;
  req.method = "GET";
  req.target = absl::StrCat("/v2/", repo.repository, "/blobs/", digest);
  req.what = absl::StrCat("GET blob ", digest);
  StringSink sink(max_bytes, absl::StrCat("blob ", digest));
  ASSIGN_OR_RETURN(Response resp, Send(repo, req, {PullScope(repo)}, &sink));
  if (resp.status != 200) return HttpError(repo, req, resp);
  std::string got = Sha256Digest(sink.data());
  if (got != digest) {
    return absl::DataLossError(absl::StrCat(Prefix(repo), ": ", req.what,
                                            ": content hashes to ", got,
                                            "; refusing it"));
  }
  return std::move(sink.data());
}

absl::Status RegistryClient::FetchBlob(const Reference& repo,
                                       const Descriptor& desc,
                                       ContentStore& store) {
  if (!IsValidDigest(desc.digest)) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid digest ", desc.digest));
  }
  if (store.Has(desc.digest)) return absl::OkStatus();
  ASSIGN_OR_RETURN(std::string tmp, store.NewTempPath("pull"));
  UniqueFd fd(open(tmp.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd) return ErrnoStatus(errno, "open(%s)", tmp);
  auto cleanup = [&] { unlink(tmp.c_str()); };

  Request req;
  req.method = "GET";
  req.target = absl::StrCat("/v2/", repo.repository, "/blobs/", desc.digest);
  req.what = absl::StrCat("GET blob ", desc.digest);
  req.blob_transfer = true;
  FileSink sink(fd.get(), desc.size, desc.digest);
  absl::StatusOr<Response> resp = Send(repo, req, {PullScope(repo)}, &sink);
  if (!resp.ok()) {
    cleanup();
    return resp.status();
  }
  if (resp->status != 200) {
    cleanup();
    return HttpError(repo, req, *resp);
  }
  std::string got = sink.Digest();
  if (got != desc.digest) {
    cleanup();
    return absl::DataLossError(absl::StrCat(Prefix(repo), ": ", req.what,
                                            ": content hashes to ", got,
                                            "; refusing it"));
  }
  if (desc.size > 0 && sink.bytes() != desc.size) {
    cleanup();
    return absl::DataLossError(
        absl::StrCat(Prefix(repo), ": ", req.what, ": got ", sink.bytes(),
                     " bytes, the descriptor says ", desc.size));
  }
  if (fsync(fd.get()) != 0) {
    cleanup();
    return ErrnoStatus(errno, "fsync(%s)", tmp);
  }
  fd.reset();
  RETURN_IF_ERROR(store.CommitTemp(tmp, desc.digest));
  if (options_.on_blob_pulled) options_.on_blob_pulled(sink.bytes());
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// Push.

absl::StatusOr<BlobPushResult> RegistryClient::PushBlob(
    const Reference& repo, const Descriptor& desc, const std::string& path,
    const Reference* mount_from) {
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return ErrnoStatus(errno, "open(%s)", path);
  struct stat st;
  if (fstat(fd.get(), &st) != 0) return ErrnoStatus(errno, "fstat(%s)", path);
  if (desc.size != st.st_size) {
    return absl::InvalidArgumentError(
        absl::StrCat("blob ", desc.digest, " at ", path, " has ", st.st_size,
                     " bytes, its descriptor says ", desc.size));
  }
  ASSIGN_OR_RETURN(BlobPushResult result,
                   PushBlobFrom(repo, desc, fd.get(), "", mount_from));
  if (result == BlobPushResult::kUploaded && options_.on_blob_pushed) {
    options_.on_blob_pushed(desc.size);
  }
  return result;
}

absl::StatusOr<BlobPushResult> RegistryClient::PushBlobBytes(
    const Reference& repo, const Descriptor& desc, absl::string_view bytes) {
  if (desc.size != static_cast<int64_t>(bytes.size()) ||
      Sha256Digest(bytes) != desc.digest) {
    return absl::InvalidArgumentError(
        absl::StrCat("bytes given for blob ", desc.digest, " do not match it"));
  }
  return PushBlobFrom(repo, desc, -1, bytes, nullptr);
}

absl::StatusOr<BlobPushResult> RegistryClient::PushBlobFrom(
    const Reference& repo, const Descriptor& desc, int fd,
    absl::string_view bytes, const Reference* mount_from) {
  if (!IsValidDigest(desc.digest)) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid digest ", desc.digest));
  }
  ASSIGN_OR_RETURN(bool exists, HasBlob(repo, desc.digest));
  if (exists) return BlobPushResult::kExisted;

  bool mount = mount_from != nullptr &&
               NormalizeRegistryHost(mount_from->registry) ==
                   NormalizeRegistryHost(repo.registry) &&
               mount_from->repository != repo.repository;
  std::vector<std::string> scopes = {PushScope(repo)};
  if (mount) scopes.push_back(PullScope(*mount_from));

  // An upload session that fails half-way cannot be trusted to resume, so
  // transient failures restart the whole upload.
  absl::Duration backoff = options_.initial_backoff;
  for (int attempt = 0;; ++attempt) {
    absl::StatusOr<BlobPushResult> result =
        [&]() -> absl::StatusOr<BlobPushResult> {
      Request start;
      start.method = "POST";
      start.target = absl::StrCat("/v2/", repo.repository, "/blobs/uploads/");
      start.what = "POST blob upload";
      if (mount) {
        start.target =
            absl::StrCat(start.target, "?mount=", Escape(desc.digest),
                         "&from=", Escape(mount_from->repository));
        start.what = absl::StrCat("mount blob ", desc.digest, " from ",
                                  mount_from->repository);
      }
      ASSIGN_OR_RETURN(Response resp, Send(repo, start, scopes, nullptr));
      if (mount && resp.status == 201) return BlobPushResult::kMounted;
      if (resp.status != 202) return HttpError(repo, start, resp);
      std::string location = resp.Header("location");
      if (location.empty()) {
        return absl::InternalError(absl::StrCat(Prefix(repo), ": ", start.what,
                                                ": 202 without a Location"));
      }
      location = ResolveLocation(resp.url, location);

      if (desc.size > options_.monolithic_upload_max && fd >= 0) {
        for (int64_t off = 0; off < desc.size;) {
          int64_t n = std::min(options_.chunk_size, desc.size - off);
          Request patch;
          patch.method = "PATCH";
          patch.target = location;
          patch.what = absl::StrCat("PATCH blob ", desc.digest, " bytes ", off,
                                    "-", off + n - 1);
          patch.blob_transfer = true;
          patch.retryable = false;
          patch.has_body = true;
          patch.body_fd = fd;
          patch.body_offset = off;
          patch.body_length = n;
          patch.headers = {
              "Content-Type: application/octet-stream",
              absl::StrCat("Content-Range: ", off, "-", off + n - 1)};
          ASSIGN_OR_RETURN(Response pr, Send(repo, patch, scopes, nullptr));
          if (pr.status != 202) return HttpError(repo, patch, pr);
          std::string next = pr.Header("location");
          if (!next.empty()) location = ResolveLocation(pr.url, next);
          off += n;
        }
        Request put;
        put.method = "PUT";
        put.target = AddQuery(location, "digest", desc.digest);
        put.what = absl::StrCat("PUT blob ", desc.digest);
        put.retryable = false;
        put.has_body = false;
        put.headers = {"Content-Type: application/octet-stream"};
        ASSIGN_OR_RETURN(Response done, Send(repo, put, scopes, nullptr));
        if (done.status != 201) return HttpError(repo, put, done);
      } else {
        Request put;
        put.method = "PUT";
        put.target = AddQuery(location, "digest", desc.digest);
        put.what = absl::StrCat("PUT blob ", desc.digest);
        put.blob_transfer = true;
        put.retryable = false;
        put.has_body = true;
        if (fd >= 0) {
          put.body_fd = fd;
          put.body_offset = 0;
          put.body_length = desc.size;
        } else {
          put.body = bytes;
        }
        put.headers = {"Content-Type: application/octet-stream"};
        ASSIGN_OR_RETURN(Response done, Send(repo, put, scopes, nullptr));
        if (done.status != 201) return HttpError(repo, put, done);
        std::string header = done.Header("docker-content-digest");
        if (!header.empty() && header != desc.digest) {
          return absl::DataLossError(absl::StrCat(
              Prefix(repo), ": ", put.what, ": the registry stored ", header));
        }
      }
      return BlobPushResult::kUploaded;
    }();
    if (result.ok() || !IsRetryableCode(result.status().code()) ||
        attempt >= options_.max_retries) {
      return result;
    }
    LS_LOG(DEBUG) << result.status() << "; restarting the upload in "
                  << backoff;
    absl::SleepFor(backoff);
    backoff = std::min(backoff * 2, options_.max_backoff);
  }
}

absl::StatusOr<std::string> RegistryClient::PushManifest(
    const Reference& repo, absl::string_view tag_or_digest,
    absl::string_view media_type, absl::string_view bytes) {
  std::string digest = Sha256Digest(bytes);
  if (absl::StartsWith(tag_or_digest, "sha256:") && tag_or_digest != digest) {
    return absl::InvalidArgumentError(absl::StrCat(
        "manifest bytes hash to ", digest, ", not ", tag_or_digest));
  }
  Request req;
  req.method = "PUT";
  req.target =
      absl::StrCat("/v2/", repo.repository, "/manifests/", tag_or_digest);
  req.what = absl::StrCat("PUT manifest ", tag_or_digest);
  req.has_body = true;
  req.body = bytes;
  req.headers = {absl::StrCat("Content-Type: ", media_type)};
  ASSIGN_OR_RETURN(Response resp, Send(repo, req, {PushScope(repo)}, nullptr));
  if (resp.status != 201 && resp.status != 200) {
    return HttpError(repo, req, resp);
  }
  std::string header = resp.Header("docker-content-digest");
  if (!header.empty() && IsValidDigest(header) && header != digest) {
    return absl::DataLossError(
        absl::StrCat(Prefix(repo), ": ", req.what, ": the registry stored ",
                     header, " for a manifest that hashes to ", digest));
  }
  return digest;
}

}  // namespace longshore::image
