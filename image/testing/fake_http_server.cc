#include "image/testing/fake_http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/errno_status.h"

namespace longshore::image::testing {
namespace {

const char* Reason(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 307:
      return "Temporary Redirect";
    case 401:
      return "Unauthorized";
    case 404:
      return "Not Found";
    case 429:
      return "Too Many Requests";
    case 500:
      return "Internal Server Error";
    case 503:
      return "Service Unavailable";
    default:
      return "Status";
  }
}

bool WriteAll(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = write(fd, data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

absl::StatusOr<std::unique_ptr<FakeHttpServer>> FakeHttpServer::Start(
    Handler h) {
  std::unique_ptr<FakeHttpServer> s(new FakeHttpServer());
  s->handler_ = std::move(h);
  s->listen_fd_.reset(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!s->listen_fd_) return ErrnoStatus(errno, "socket");
  int one = 1;
  setsockopt(s->listen_fd_.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(s->listen_fd_.get(), reinterpret_cast<sockaddr*>(&addr),
           sizeof(addr)) != 0) {
    return ErrnoStatus(errno, "bind(127.0.0.1:0)");
  }
  socklen_t len = sizeof(addr);
  getsockname(s->listen_fd_.get(), reinterpret_cast<sockaddr*>(&addr), &len);
  s->port_ = ntohs(addr.sin_port);
  if (listen(s->listen_fd_.get(), 16) != 0) return ErrnoStatus(errno, "listen");
  s->thread_ = std::thread([p = s.get()] { p->Serve(); });
  return s;
}

FakeHttpServer::~FakeHttpServer() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

std::string FakeHttpServer::host() const {
  return absl::StrCat("127.0.0.1:", port_);
}

std::vector<FakeRequest> FakeHttpServer::requests() const {
  absl::MutexLock lock(&mu_);
  return requests_;
}

void FakeHttpServer::Serve() {
  while (!stop_) {
    pollfd p{listen_fd_.get(), POLLIN, 0};
    if (poll(&p, 1, 50) <= 0) continue;
    UniqueFd conn(accept4(listen_fd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!conn) continue;
    HandleConnection(conn.get());
  }
}

void FakeHttpServer::HandleConnection(int fd) {
  std::string data;
  char buf[65536];
  size_t header_end;
  while ((header_end = data.find("\r\n\r\n")) == std::string::npos) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n <= 0) return;
    data.append(buf, static_cast<size_t>(n));
    // Not HTTP (a TLS ClientHello from a client probing for https): hang up,
    // as a plain-HTTP registry's handshake failure would look to the client.
    if (!isupper(static_cast<unsigned char>(data[0]))) return;
  }
  FakeRequest req;
  std::vector<std::string> lines =
      absl::StrSplit(data.substr(0, header_end), "\r\n");
  std::vector<std::string> first = absl::StrSplit(lines[0], ' ');
  if (first.size() < 2) return;
  req.method = first[0];
  req.target = first[1];
  for (size_t i = 1; i < lines.size(); ++i) {
    size_t colon = lines[i].find(':');
    if (colon == std::string::npos) continue;
    req.headers[absl::AsciiStrToLower(lines[i].substr(0, colon))] =
        std::string(absl::StripAsciiWhitespace(lines[i].substr(colon + 1)));
  }
  size_t want = 0;
  if (!absl::SimpleAtoi(req.Header("content-length"), &want)) want = 0;
  req.body = data.substr(header_end + 4);
  while (req.body.size() < want) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n <= 0) break;
    req.body.append(buf, static_cast<size_t>(n));
  }
  {
    absl::MutexLock lock(&mu_);
    requests_.push_back(req);
  }
  FakeResponse resp = handler_(req);
  std::string out =
      absl::StrCat("HTTP/1.1 ", resp.status, " ", Reason(resp.status), "\r\n");
  for (const auto& [k, v] : resp.headers)
    absl::StrAppend(&out, k, ": ", v, "\r\n");
  absl::StrAppend(&out, "Content-Length: ", resp.body.size(),
                  "\r\nConnection: close\r\n\r\n");
  if (req.method != "HEAD") out += resp.body;
  WriteAll(fd, out);
  shutdown(fd, SHUT_WR);
}

}  // namespace longshore::image::testing
