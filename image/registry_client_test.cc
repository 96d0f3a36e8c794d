// RegistryClient against a real docker-registry (distribution 2.8) started on
// 127.0.0.1 by each test, and against a scripted HTTP server for behaviour a
// real registry will not show on demand (Bearer tokens, 429/503, hostile
// blobs).
#include "image/registry_client.h"

#include <stdlib.h>
#include <unistd.h>

#include <string>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/file_util.h"
#include "common/sha256.h"
#include "gtest/gtest.h"
#include "image/content_store.h"
#include "image/testing/fake_http_server.h"
#include "image/testing/test_registry.h"

namespace longshore::image {
namespace {

using testing::FakeHttpServer;
using testing::FakeRequest;
using testing::FakeResponse;
using testing::TestRegistry;

// Pseudo-random bytes, so blobs do not compress or deduplicate by accident.
std::string Bytes(size_t n, uint32_t seed) {
  std::string s(n, '\0');
  uint32_t x = seed * 2654435761u + 1;
  for (size_t i = 0; i < n; ++i) {
    x = x * 1664525u + 1013904223u;
    s[i] = static_cast<char>(x >> 24);
  }
  return s;
}

Descriptor BlobDesc(const std::string& bytes,
                    const std::string& media_type = kMediaTypeOciLayerGzip) {
  Descriptor d;
  d.media_type = media_type;
  d.digest = Sha256Digest(bytes);
  d.size = static_cast<int64_t>(bytes.size());
  return d;
}

Reference Repo(const std::string& host, const std::string& repo) {
  auto r = ParseReference(absl::StrCat(host, "/", repo));
  EXPECT_TRUE(r.ok()) << r.status();
  return *r;
}

int CountOccurrences(const std::string& haystack, const std::string& needle) {
  int n = 0;
  for (size_t pos = haystack.find(needle); pos != std::string::npos;
       pos = haystack.find(needle, pos + 1)) {
    ++n;
  }
  return n;
}

class RegistryClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* t = getenv("TEST_TMPDIR");
    auto dir = MakeTempDir(t ? t : "/tmp", "registry_client_test");
    ASSERT_TRUE(dir.ok()) << dir.status();
    root_ = *dir;
    auto store = ContentStore::Open(root_ + "/store");
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
  }
  void TearDown() override { RemoveTree(root_).IgnoreError(); }

  std::unique_ptr<TestRegistry> StartRegistry(
      const TestRegistry::Options& opts = {}) {
    auto r = TestRegistry::StartNew(root_ + "/registry", opts);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? std::move(*r) : nullptr;
  }

  // Writes `bytes` to a file and returns its path.
  std::string WriteBlobFile(const std::string& name, const std::string& bytes) {
    std::string path = root_ + "/" + name;
    EXPECT_TRUE(WriteFileAtomic(path, bytes).ok());
    return path;
  }

  static RegistryOptions FastRetries() {
    RegistryOptions o;
    o.initial_backoff = absl::Milliseconds(20);
    o.max_backoff = absl::Milliseconds(200);
    o.request_timeout = absl::Seconds(20);
    return o;
  }

  std::string root_;
  std::unique_ptr<ContentStore> store_;
};

// --- Against a real registry.

TEST_F(RegistryClientTest, MonolithicAndChunkedUploadsRoundTrip) {
  auto reg = StartRegistry();
  ASSERT_NE(reg, nullptr);
  RegistryOptions opts = FastRetries();
  opts.monolithic_upload_max = 10000;
  opts.chunk_size = 4096;
  RegistryClient client(opts);
  Reference repo = Repo(reg->host(), "team/app");

  std::string small = Bytes(3000, 1);
  std::string big = Bytes(20000, 2);  // five PATCH chunks
  Descriptor ds = BlobDesc(small), db = BlobDesc(big);

  auto has = client.HasBlob(repo, db.digest);
  ASSERT_TRUE(has.ok()) << has.status();
  EXPECT_FALSE(*has);

  auto r1 = client.PushBlob(repo, ds, WriteBlobFile("small", small), nullptr);
  ASSERT_TRUE(r1.ok()) << r1.status();
  EXPECT_EQ(*r1, BlobPushResult::kUploaded);
  auto r2 = client.PushBlob(repo, db, WriteBlobFile("big", big), nullptr);
  ASSERT_TRUE(r2.ok()) << r2.status();
  EXPECT_EQ(*r2, BlobPushResult::kUploaded);
  EXPECT_EQ(CountOccurrences(reg->Log(), "\"PATCH /v2/team/app/blobs/uploads/"),
            5)
      << reg->Log();

  // Pushing again finds it with HEAD and uploads nothing.
  auto r3 = client.PushBlob(repo, db, root_ + "/big", nullptr);
  ASSERT_TRUE(r3.ok()) << r3.status();
  EXPECT_EQ(*r3, BlobPushResult::kExisted);

  for (const auto& [d, bytes] : {std::pair{ds, small}, std::pair{db, big}}) {
    ASSERT_TRUE(client.FetchBlob(repo, d, *store_).ok());
    auto got = store_->ReadBlob(d.digest);
    ASSERT_TRUE(got.ok());
    EXPECT_EQ(*got, bytes);
  }
}

TEST_F(RegistryClientTest, CrossRepositoryMountUploadsNothing) {
  auto reg = StartRegistry();
  ASSERT_NE(reg, nullptr);
  RegistryClient client(FastRetries());
  Reference a = Repo(reg->host(), "base/os");
  Reference b = Repo(reg->host(), "team/app");
  std::string bytes = Bytes(5000, 3);
  Descriptor d = BlobDesc(bytes);
  std::string path = WriteBlobFile("blob", bytes);
  ASSERT_EQ(*client.PushBlob(a, d, path, nullptr), BlobPushResult::kUploaded);

  auto r = client.PushBlob(b, d, path, &a);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, BlobPushResult::kMounted);
  std::string log = reg->Log();
  EXPECT_TRUE(absl::StrContains(log, "\"POST /v2/team/app/blobs/uploads/?"))
      << log;
  EXPECT_TRUE(absl::StrContains(log, "mount=sha256"));
  EXPECT_FALSE(absl::StrContains(log, "\"PUT /v2/team/app/blobs/uploads/"))
      << "a blob was uploaded to team/app although it could be mounted";
  auto has = client.HasBlob(b, d.digest);
  ASSERT_TRUE(has.ok());
  EXPECT_TRUE(*has);
}

TEST_F(RegistryClientTest, ManifestsByTagDigestAndIndex) {
  auto reg = StartRegistry();
  ASSERT_NE(reg, nullptr);
  RegistryClient client(FastRetries());
  Reference repo = Repo(reg->host(), "team/app");

  // Two single-layer images (amd64, arm64) and an index over both.
  std::vector<Descriptor> manifests;
  for (const char* arch : {"arm64", "amd64"}) {
    std::string layer = Bytes(1000, arch[1]);
    Descriptor ld = BlobDesc(layer);
    ASSERT_TRUE(client.PushBlobBytes(repo, ld, layer).ok());
    OciConfig config;
    config.architecture = arch;
    config.os = "linux";
    config.rootfs.diff_ids = {Sha256Digest(arch)};
    std::string cj = ToJson(config);
    Descriptor cd = BlobDesc(cj, kMediaTypeOciConfig);
    ASSERT_TRUE(client.PushBlobBytes(repo, cd, cj).ok());
    Manifest m;
    m.config = cd;
    m.layers = {ld};
    std::string mj = ToJson(m);
    auto digest =
        client.PushManifest(repo, Sha256Digest(mj), kMediaTypeOciManifest, mj);
    ASSERT_TRUE(digest.ok()) << digest.status();
    Descriptor md = BlobDesc(mj, kMediaTypeOciManifest);
    md.platform = Platform{arch, "linux", "", {}, ""};
    manifests.push_back(md);
  }
  Index index;
  index.manifests = manifests;
  std::string ij = ToJson(index);
  auto pushed = client.PushManifest(repo, "multi", kMediaTypeOciIndex, ij);
  ASSERT_TRUE(pushed.ok()) << pushed.status();
  EXPECT_EQ(*pushed, Sha256Digest(ij));

  auto raw =
      client.GetManifest(*ParseReference(reg->host() + "/team/app:multi"));
  ASSERT_TRUE(raw.ok()) << raw.status();
  EXPECT_EQ(raw->descriptor.media_type, kMediaTypeOciIndex);
  EXPECT_EQ(raw->bytes, ij);

  auto resolved =
      client.ResolveManifest(*ParseReference(reg->host() + "/team/app:multi"));
  ASSERT_TRUE(resolved.ok()) << resolved.status();
  EXPECT_EQ(resolved->descriptor.digest, manifests[1].digest);
  EXPECT_EQ(resolved->config.architecture, "amd64");
  ASSERT_TRUE(resolved->index.has_value());
  EXPECT_EQ(resolved->index->digest, Sha256Digest(ij));

  // By digest, straight to the arm64 manifest.
  auto by_digest = client.ResolveManifest(*ParseReference(
      absl::StrCat(reg->host(), "/team/app@", manifests[0].digest)));
  ASSERT_TRUE(by_digest.ok()) << by_digest.status();
  EXPECT_EQ(by_digest->config.architecture, "arm64");
  EXPECT_FALSE(by_digest->index.has_value());

  // A missing tag is NotFound and says where, what and why.
  auto missing =
      client.GetManifest(*ParseReference(reg->host() + "/team/app:nope"));
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(absl::StrContains(missing.status().message(), reg->host()));
  EXPECT_TRUE(absl::StrContains(missing.status().message(), "team/app"));
  EXPECT_TRUE(absl::StrContains(missing.status().message(), "HTTP 404"));
  EXPECT_TRUE(absl::StrContains(missing.status().message(), "MANIFEST_UNKNOWN"))
      << missing.status();
}

TEST_F(RegistryClientTest, BasicAuthWithHtpasswd) {
  auto reg = StartRegistry({"ci", "s3cret", 0});
  ASSERT_NE(reg, nullptr);
  Reference repo = Repo(reg->host(), "team/app");
  std::string bytes = Bytes(2000, 4);
  Descriptor d = BlobDesc(bytes);

  RegistryOptions good = FastRetries();
  good.credentials[reg->host()] = {"ci", "s3cret"};
  RegistryClient ok_client(good);
  auto pushed = ok_client.PushBlobBytes(repo, d, bytes);
  ASSERT_TRUE(pushed.ok()) << pushed.status();
  EXPECT_EQ(*pushed, BlobPushResult::kUploaded);
  ASSERT_TRUE(ok_client.FetchBlob(repo, d, *store_).ok());

  RegistryOptions bad = FastRetries();
  bad.credentials[reg->host()] = {"ci", "wrong"};
  RegistryClient bad_client(bad);
  auto denied = bad_client.HasBlob(repo, d.digest);
  ASSERT_FALSE(denied.ok());
  EXPECT_EQ(denied.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_TRUE(absl::StrContains(denied.status().message(), reg->host()));
  EXPECT_TRUE(absl::StrContains(denied.status().message(), "rejected"))
      << denied.status();
  EXPECT_TRUE(absl::StrContains(denied.status().message(), "\"ci\""));

  RegistryClient anonymous(FastRetries());
  auto anon = anonymous.HasBlob(repo, d.digest);
  ASSERT_FALSE(anon.ok());
  EXPECT_EQ(anon.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_TRUE(absl::StrContains(anon.status().message(), "none are configured"))
      << anon.status();
}

TEST_F(RegistryClientTest, RetriesUntilALateRegistryAnswers) {
  auto created = TestRegistry::Create(root_ + "/registry", {});
  ASSERT_TRUE(created.ok()) << created.status();
  TestRegistry& reg = **created;
  RegistryOptions opts = FastRetries();
  opts.initial_backoff = absl::Milliseconds(100);
  opts.max_backoff = absl::Milliseconds(400);
  opts.max_retries = 12;  // about 4 s of patience
  RegistryClient client(opts);
  Reference repo = Repo(reg.host(), "team/app");

  absl::Time start = absl::Now();
  std::thread late([&] {
    absl::SleepFor(absl::Milliseconds(1200));
    ASSERT_TRUE(reg.Start().ok());
  });
  std::string bytes = Bytes(1000, 5);
  auto r = client.PushBlobBytes(repo, BlobDesc(bytes), bytes);
  late.join();
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, BlobPushResult::kUploaded);
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(1200));

  // With the registry gone and few retries, the error names what failed.
  reg.Stop();
  RegistryOptions impatient = FastRetries();
  impatient.max_retries = 1;
  RegistryClient client2(impatient);
  auto down = client2.HasBlob(repo, BlobDesc(bytes).digest);
  ASSERT_FALSE(down.ok());
  EXPECT_EQ(down.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(absl::StrContains(down.status().message(), reg.host()))
      << down.status();
}

// --- Against a scripted server.

TEST_F(RegistryClientTest, BearerTokenFlowWithCredentialsAndCache) {
  std::string manifest = R"({"schemaVersion":2})";
  int token_requests = 0;
  std::string realm;
  auto server = FakeHttpServer::Start([&](const FakeRequest& r) {
    FakeResponse resp;
    if (absl::StartsWith(r.target, "/token?")) {
      ++token_requests;
      EXPECT_TRUE(absl::StrContains(r.target, "service=fake.registry"));
      EXPECT_TRUE(
          absl::StrContains(r.target, "scope=repository%3Ateam%2Fapp%3Apull"))
          << r.target;
      // base64("bob:pw")
      if (r.Header("authorization") != "Basic Ym9iOnB3") {
        resp.status = 401;
        return resp;
      }
      resp.body = R"({"token":"tok-1","expires_in":300})";
      return resp;
    }
    if (r.Header("authorization") != "Bearer tok-1") {
      resp.status = 401;
      resp.headers.push_back(
          {"WWW-Authenticate",
           absl::StrCat("Bearer realm=\"", realm,
                        "\",service=\"fake.registry\",scope=\"repository:"
                        "team/app:pull\"")});
      resp.body = R"({"errors":[{"code":"UNAUTHORIZED","message":"no"}]})";
      return resp;
    }
    resp.headers.push_back({"Content-Type", kMediaTypeOciManifest});
    resp.body = manifest;
    return resp;
  });
  ASSERT_TRUE(server.ok()) << server.status();
  realm = absl::StrCat("http://", (*server)->host(), "/token");

  RegistryOptions opts = FastRetries();
  opts.credentials[(*server)->host()] = {"bob", "pw"};
  RegistryClient client(opts);
  auto ref = ParseReference((*server)->host() + "/team/app:1");
  for (int i = 0; i < 3; ++i) {
    auto got = client.GetManifest(*ref);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(got->bytes, manifest);
    EXPECT_EQ(got->descriptor.digest, Sha256Digest(manifest));
  }
  EXPECT_EQ(token_requests, 1) << "the token is cached per scope";

  // Wrong credentials: the token service refuses; the error says so.
  RegistryOptions bad = FastRetries();
  bad.credentials[(*server)->host()] = {"bob", "nope"};
  RegistryClient bad_client(bad);
  auto denied = bad_client.GetManifest(*ref);
  ASSERT_FALSE(denied.ok());
  EXPECT_EQ(denied.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_TRUE(absl::StrContains(denied.status().message(), "token"))
      << denied.status();
  EXPECT_TRUE(absl::StrContains(denied.status().message(), "\"bob\""));
}

TEST_F(RegistryClientTest, HonoursRetryAfterOn429) {
  int calls = 0;
  auto server = FakeHttpServer::Start([&](const FakeRequest& r) {
    FakeResponse resp;
    if (++calls == 1) {
      resp.status = 429;
      resp.headers.push_back({"Retry-After", "1"});
      return resp;
    }
    resp.status = 200;
    return resp;
  });
  ASSERT_TRUE(server.ok());
  RegistryClient client(FastRetries());
  absl::Time start = absl::Now();
  auto has =
      client.HasBlob(Repo((*server)->host(), "team/app"), Sha256Digest("x"));
  ASSERT_TRUE(has.ok()) << has.status();
  EXPECT_TRUE(*has);
  EXPECT_EQ(calls, 2);
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(950));
}

TEST_F(RegistryClientTest, GivesUpAfterMaxRetriesOn503) {
  auto server = FakeHttpServer::Start([&](const FakeRequest&) {
    FakeResponse resp;
    resp.status = 503;
    resp.body = R"({"errors":[{"code":"UNAVAILABLE","message":"try later"}]})";
    return resp;
  });
  ASSERT_TRUE(server.ok());
  RegistryOptions opts = FastRetries();
  opts.max_retries = 3;
  RegistryClient client(opts);
  auto r = client.GetManifest(*ParseReference((*server)->host() + "/a/b:1"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ((*server)->requests().size(), 4u);
  std::string msg(r.status().message());
  EXPECT_TRUE(absl::StrContains(msg, (*server)->host())) << msg;
  EXPECT_TRUE(absl::StrContains(msg, "repository a/b")) << msg;
  EXPECT_TRUE(absl::StrContains(msg, "HTTP 503")) << msg;
  EXPECT_TRUE(absl::StrContains(msg, "UNAVAILABLE: try later")) << msg;
}

TEST_F(RegistryClientTest, RejectsBlobsThatDoNotMatchTheirDescriptor) {
  std::string real = Bytes(4000, 6);
  std::string served;
  auto server = FakeHttpServer::Start([&](const FakeRequest&) {
    FakeResponse resp;
    resp.body = served;
    return resp;
  });
  ASSERT_TRUE(server.ok());
  RegistryClient client(FastRetries());
  Reference repo = Repo((*server)->host(), "team/app");
  Descriptor d = BlobDesc(real);

  served = Bytes(4000, 7);  // same size, other bytes
  absl::Status s = client.FetchBlob(repo, d, *store_);
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "refusing")) << s;
  EXPECT_FALSE(store_->Has(d.digest));

  served = real + "trailing";  // longer than the descriptor
  s = client.FetchBlob(repo, d, *store_);
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "longer")) << s;
  EXPECT_FALSE(store_->Has(d.digest));

  served = real;
  s = client.FetchBlob(repo, d, *store_);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_TRUE(store_->Has(d.digest));

  // A manifest asked for by digest must hash to it.
  served = R"({"schemaVersion":2,"mediaType":")" +
           std::string(kMediaTypeOciManifest) + "\"}";
  auto m = client.GetManifest(*ParseReference(absl::StrCat(
      (*server)->host(), "/team/app@", Sha256Digest("something else"))));
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), absl::StatusCode::kDataLoss) << m.status();
}

// --- Pure functions.

TEST(AuthChallengeTest, ParsesQuotedParametersWithCommas) {
  auto c = ParseAuthChallenge(
      R"(Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull,push")");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->scheme, "bearer");
  EXPECT_EQ(c->params["realm"], "https://auth.docker.io/token");
  EXPECT_EQ(c->params["service"], "registry.docker.io");
  EXPECT_EQ(c->params["scope"], "repository:library/alpine:pull,push");

  auto basic = ParseAuthChallenge(R"(Basic realm="a \"quoted\" realm")");
  ASSERT_TRUE(basic.ok());
  EXPECT_EQ(basic->scheme, "basic");
  EXPECT_EQ(basic->params["realm"], "a \"quoted\" realm");

  EXPECT_FALSE(ParseAuthChallenge(R"(Bearer realm="open)").ok());
  EXPECT_FALSE(ParseAuthChallenge("Bearer realm").ok());
}

TEST(DockerConfigTest, LoadsAuthsInBothForms) {
  const char* t = getenv("TEST_TMPDIR");
  auto dir = MakeTempDir(t ? t : "/tmp", "docker_config");
  ASSERT_TRUE(dir.ok());
  std::string path = *dir + "/config.json";
  // "alice:pa:ss" in base64; a password may hold a colon.
  ASSERT_TRUE(WriteFileAtomic(path, R"({"auths":{
      "https://index.docker.io/v1/":{"auth":"YWxpY2U6cGE6c3M="},
      "reg.example:5000":{"username":"bob","password":"pw"},
      "empty.example":{}}})")
                  .ok());
  std::map<std::string, RegistryCredential> creds;
  creds["reg.example:5000"] = {"explicit", "wins"};
  ASSERT_TRUE(LoadDockerConfigCredentials(path, &creds).ok());
  EXPECT_EQ(creds.size(), 2u);
  EXPECT_EQ(creds["docker.io"].username, "alice");
  EXPECT_EQ(creds["docker.io"].password, "pa:ss");
  EXPECT_EQ(creds["reg.example:5000"].username, "explicit");

  ASSERT_TRUE(WriteFileAtomic(path, R"({"auths":{"x":{"auth":"!!"}}})").ok());
  EXPECT_EQ(LoadDockerConfigCredentials(path, &creds).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(LoadDockerConfigCredentials(*dir + "/missing.json", &creds).code(),
            absl::StatusCode::kNotFound);
  RemoveTree(*dir).IgnoreError();
}

TEST(NormalizeRegistryHostTest, MatchesDockerKeys) {
  EXPECT_EQ(NormalizeRegistryHost("https://index.docker.io/v1/"), "docker.io");
  EXPECT_EQ(NormalizeRegistryHost("registry-1.docker.io"), "docker.io");
  EXPECT_EQ(NormalizeRegistryHost("http://Reg.Example:5000/path"),
            "reg.example:5000");
  EXPECT_EQ(NormalizeRegistryHost("ghcr.io"), "ghcr.io");
}

}  // namespace
}  // namespace longshore::image
