#include "scheduler/web/web_server.h"

#include <httplib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/errno_status.h"
#include "common/log.h"
#include "common/unique_fd.h"
#include "scheduler/web/event_stream.h"
#include "scheduler/web/tls_peer.h"
#include "scheduler/web/web_assets.h"

namespace longshore::scheduler::web {
namespace {

// Build ids are lower-case hex; anything else is not routed.
constexpr char kBuildId[] = "([0-9a-f]{1,64})";

bool IsLoopbackAddress(absl::string_view addr) {
  return absl::StartsWith(addr, "127.") || addr == "::1" ||
         absl::StartsWith(addr, "::ffff:127.");
}

Credentials CredentialsOf(const httplib::Request& req) {
  Credentials c;
  c.certificate_names = CertificateNames(req.ssl);
  if (req.has_header("Authorization")) {
    c.authorization_present = true;
    // get_header_value returns a copy: keep it alive while viewing it.
    const std::string header = req.get_header_value("Authorization");
    absl::string_view value = header;
    if (absl::ConsumePrefix(&value, "Bearer ") ||
        absl::ConsumePrefix(&value, "bearer ")) {
      c.bearer = std::string(absl::StripAsciiWhitespace(value));
    }
  }
  c.loopback_peer = IsLoopbackAddress(req.remote_addr);
  return c;
}

// Headers on every answer: the page loads nothing from elsewhere, is never
// framed, and no answer is cached (they hold build data).
void SetSecurityHeaders(httplib::Response& res) {
  res.set_header("Content-Security-Policy",
                 "default-src 'none'; script-src 'self'; style-src 'self'; "
                 "img-src 'self' data:; connect-src 'self'; "
                 "frame-ancestors 'none'; base-uri 'none'; form-action 'self'");
  res.set_header("X-Content-Type-Options", "nosniff");
  res.set_header("X-Frame-Options", "DENY");
  res.set_header("Referrer-Policy", "no-referrer");
  res.set_header("Cache-Control", "no-store");
}

void SendJson(httplib::Response& res, const JsonReply& reply) {
  res.status = reply.status;
  if (reply.status == 401) res.set_header("WWW-Authenticate", "Bearer");
  res.set_content(reply.body, "application/json; charset=utf-8");
}

void SendAsset(httplib::Response& res, absl::string_view path) {
  const WebAsset* asset = FindWebAsset(path);
  if (asset == nullptr) {
    res.status = 404;
    res.set_content("not found\n", "text/plain; charset=utf-8");
    return;
  }
  res.set_content(asset->body.data(), asset->body.size(), asset->content_type);
}

}  // namespace

absl::Status SplitListenAddress(const std::string& address, std::string* host,
                                int* port) {
  absl::string_view rest = address;
  size_t colon = rest.rfind(':');
  if (colon == absl::string_view::npos || colon == 0 ||
      !absl::SimpleAtoi(rest.substr(colon + 1), port) || *port < 0 ||
      *port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--web-listen \"", address,
        "\" is not HOST:PORT (e.g. 127.0.0.1:8080 or [::1]:8080)"));
  }
  absl::string_view h = rest.substr(0, colon);
  if (absl::ConsumePrefix(&h, "[")) {
    if (!absl::ConsumeSuffix(&h, "]")) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--web-listen \"", address, "\": unbalanced [ in the host"));
    }
  }
  *host = std::string(h);
  return absl::OkStatus();
}

WebServer::WebServer(WebOptions options, BuildCoordinator* coordinator,
                     EventLog* events, BlobStore* blobs,
                     const Authorizer* authz)
    : options_(std::move(options)),
      coordinator_(coordinator),
      events_(events),
      blobs_(blobs),
      authz_(authz),
      api_(coordinator, authz) {}

WebServer::~WebServer() { Stop(); }

absl::StatusOr<int> WebServer::Start() {
  if (server_ != nullptr) {
    return absl::FailedPreconditionError("web: Start called twice");
  }
  std::string host;
  int port = 0;
  if (absl::Status st = SplitListenAddress(options_.listen, &host, &port);
      !st.ok()) {
    return st;
  }
  const TlsFiles& tls = options_.tls;
  if (!tls.cert.empty()) {
    std::string error;
    auto server = std::make_unique<httplib::SSLServer>([&tls,
                                                        &error](SSL_CTX& ctx) {
      SSL_CTX_set_min_proto_version(&ctx, TLS1_2_VERSION);
      if (SSL_CTX_use_certificate_chain_file(&ctx, tls.cert.c_str()) != 1) {
        error = absl::StrCat("cannot load ", tls.cert_name, " ", tls.cert);
        return false;
      }
      if (SSL_CTX_use_PrivateKey_file(&ctx, tls.key.c_str(),
                                      SSL_FILETYPE_PEM) != 1 ||
          SSL_CTX_check_private_key(&ctx) != 1) {
        error = absl::StrCat("cannot load ", tls.key_name, " ", tls.key,
                             " (or it does not match ", tls.cert_name, ")");
        return false;
      }
      if (!tls.ca.empty()) {
        if (SSL_CTX_load_verify_locations(&ctx, tls.ca.c_str(), nullptr) != 1) {
          error = absl::StrCat("cannot load ", tls.ca_name, " ", tls.ca);
          return false;
        }
        // Browsers pick a certificate from the CAs the server names.
        STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(tls.ca.c_str());
        if (names != nullptr) SSL_CTX_set_client_CA_list(&ctx, names);
        int mode = SSL_VERIFY_PEER;
        if (!tls.client_certificate_optional) {
          mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
        }
        SSL_CTX_set_verify(&ctx, mode, nullptr);
      }
      return true;
    });
    if (!server->is_valid()) {
      return absl::InvalidArgumentError(
          absl::StrCat("web: TLS: ", error.empty() ? "setup failed" : error));
    }
    server_ = std::move(server);
  } else {
    server_ = std::make_unique<httplib::Server>();
  }
  const size_t threads = static_cast<size_t>(std::max(4, options_.threads));
  server_->new_task_queue = [threads] {
    return new httplib::ThreadPool(threads);
  };
  server_->set_payload_max_length(64 << 10);
  Route();
  const int bound = port == 0 ? server_->bind_to_any_port(host)
                              : (server_->bind_to_port(host, port) ? port : -1);
  if (bound <= 0) {
    server_.reset();
    return absl::UnavailableError(
        absl::StrCat("web: cannot listen on ", options_.listen));
  }
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  LS_LOG(INFO) << "web page on " << (tls.cert.empty() ? "http" : "https")
               << "://" << options_.listen << " (port " << bound << ")";
  return bound;
}

void WebServer::Stop() {
  if (stopping_.exchange(true)) return;
  if (server_ == nullptr) return;
  events_->WakeAll();
  server_->stop();
  if (thread_.joinable()) thread_.join();
}

void WebServer::Route() {
  httplib::Server& s = *server_;
  s.set_post_routing_handler(
      [](const httplib::Request&, httplib::Response& res) {
        SetSecurityHeaders(res);
      });
  auto page = [](const httplib::Request&, httplib::Response& res) {
    SendAsset(res, "/index.html");
  };
  s.Get("/", page);
  s.Get("/workers", page);
  s.Get(absl::StrCat("/builds/", kBuildId), page);
  s.Get(R"(/static/([a-z0-9._-]+))",
        [](const httplib::Request& req, httplib::Response& res) {
          SendAsset(res, absl::StrCat("/", req.matches[1].str()));
        });

  s.Get("/api/whoami",
        [this](const httplib::Request& req, httplib::Response& res) {
          SendJson(res, api_.Whoami(CredentialsOf(req)));
        });
  s.Get("/api/builds", [this](const httplib::Request& req,
                              httplib::Response& res) {
    int limit = options_.finished_listed;
    if (req.has_param("limit") &&
        !absl::SimpleAtoi(req.get_param_value("limit"), &limit)) {
      SendJson(res, ErrorReply(
                        absl::InvalidArgumentError("limit must be a number")));
      return;
    }
    SendJson(res, api_.ListBuilds(CredentialsOf(req), limit, absl::Now()));
  });
  s.Get(absl::StrCat("/api/builds/", kBuildId),
        [this](const httplib::Request& req, httplib::Response& res) {
          SendJson(res, api_.GetBuild(CredentialsOf(req), req.matches[1].str(),
                                      absl::Now()));
        });
  s.Get("/api/workers",
        [this](const httplib::Request& req, httplib::Response& res) {
          SendJson(res, api_.ListWorkers(CredentialsOf(req), absl::Now()));
        });

  // The build's events as they happen; ?after=SEQ or Last-Event-ID resumes.
  s.Get(absl::StrCat("/api/builds/", kBuildId, "/events"),
        [this](const httplib::Request& req, httplib::Response& res) {
          const std::string id = req.matches[1].str();
          absl::StatusOr<Identity> who =
              api_.Authorize(CredentialsOf(req), Rpc::kWebBuildEvents, id);
          if (!who.ok()) {
            SendJson(res, ErrorReply(who.status()));
            return;
          }
          uint64_t after = 0;
          std::string resume = req.has_header("Last-Event-ID")
                                   ? req.get_header_value("Last-Event-ID")
                                   : req.get_param_value("after");
          if (!resume.empty() && !absl::SimpleAtoi(resume, &after)) {
            SendJson(res, ErrorReply(absl::InvalidArgumentError(
                              "after (Last-Event-ID) must be a number")));
            return;
          }
          auto stream =
              std::make_shared<EventStream>(events_, id, after, &stopping_);
          res.set_header("X-Accel-Buffering", "no");
          // Exactly "text/event-stream": cpp-httplib compresses every other
          // text/* answer for browsers that accept it, and a compressor holds
          // events back until it has a block's worth.
          res.set_chunked_content_provider(
              "text/event-stream", [stream](size_t, httplib::DataSink& sink) {
                bool more = stream->Pump([&sink](absl::string_view bytes) {
                  return sink.is_writable() &&
                         sink.write(bytes.data(), bytes.size());
                });
                if (!more) sink.done();
                return true;
              });
        });

  // The build's whole step output as text, as it stands now.
  s.Get(absl::StrCat("/api/builds/", kBuildId, "/log"),
        [this](const httplib::Request& req, httplib::Response& res) {
          const std::string id = req.matches[1].str();
          absl::StatusOr<Identity> who =
              api_.Authorize(CredentialsOf(req), Rpc::kWebBuildLog, id);
          if (!who.ok()) {
            SendJson(res, ErrorReply(who.status()));
            return;
          }
          res.set_chunked_content_provider(
              "text/plain; charset=utf-8",
              [this, id](size_t, httplib::DataSink& sink) {
                absl::Status st = WriteBuildLog(
                    events_, id, [&sink](absl::string_view bytes) {
                      return sink.is_writable() &&
                             sink.write(bytes.data(), bytes.size());
                    });
                if (!st.ok()) {
                  LS_LOG(WARNING) << "web: log of " << id << ": " << st;
                  return false;
                }
                sink.done();
                return true;
              });
        });

  // A client-side output (type=oci or type=docker) as the client fetches it.
  s.Get(absl::StrCat("/api/builds/", kBuildId, "/outputs/([0-9]{1,4})"),
        [this](const httplib::Request& req, httplib::Response& res) {
          const std::string id = req.matches[1].str();
          const int index = std::stoi(req.matches[2].str());
          absl::StatusOr<Identity> who =
              api_.Authorize(CredentialsOf(req), Rpc::kWebFetchOutput, id);
          if (!who.ok()) {
            SendJson(res, ErrorReply(who.status()));
            return;
          }
          absl::StatusOr<std::string> owner =
              coordinator_->CheckOutputReady(id, index);
          if (!owner.ok()) {
            SendJson(res, ErrorReply(owner.status()));
            return;
          }
          absl::StatusOr<UniqueFd> fd = blobs_->OpenOutput(*owner, index);
          if (!fd.ok()) {
            SendJson(res, ErrorReply(fd.status()));
            return;
          }
          struct stat st = {};
          if (fstat(fd->get(), &st) != 0) {
            SendJson(res,
                     ErrorReply(ErrnoStatus(errno, "fstat(output %d)", index)));
            return;
          }
          res.set_header("Content-Disposition",
                         absl::StrCat("attachment; filename=\"build-", id,
                                      "-output-", index, ".tar\""));
          auto file = std::make_shared<UniqueFd>(std::move(*fd));
          res.set_content_provider(
              static_cast<size_t>(st.st_size), "application/x-tar",
              [file](size_t offset, size_t length, httplib::DataSink& sink) {
                char buf[64 << 10];
                const size_t want = std::min(length, sizeof(buf));
                ssize_t n =
                    pread(file->get(), buf, want, static_cast<off_t>(offset));
                if (n <= 0) return false;
                return sink.write(buf, static_cast<size_t>(n));
              });
        });

  // Read-only: every other method is refused.
  auto refuse = [](const httplib::Request&, httplib::Response& res) {
    res.status = 405;
    res.set_header("Allow", "GET, HEAD");
    res.set_content("{\"error\":\"this page is read-only\"}",
                    "application/json; charset=utf-8");
  };
  s.Post(".*", refuse);
  s.Put(".*", refuse);
  s.Delete(".*", refuse);
  s.Patch(".*", refuse);
  s.Options(".*", refuse);
}

}  // namespace longshore::scheduler::web
