#include "scheduler/authorization.h"

#include <set>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "gmock/gmock.h"
#include "google/protobuf/descriptor.h"
#include "gtest/gtest.h"
#include "proto/longshore.pb.h"
#include "scheduler/tokens.h"

namespace longshore::scheduler {
namespace {

using ::testing::HasSubstr;

TEST(RpcRulesTest, EveryMethodOfEveryServiceHasExactlyOneRule) {
  const auto* pool = google::protobuf::DescriptorPool::generated_pool();
  std::set<std::string> methods;
  for (const char* service :
       {"longshore.v1.BuildService", "longshore.v1.WorkerService",
        "longshore.v1.AdminService", "longshore.v1.SchedulerInfoService"}) {
    const google::protobuf::ServiceDescriptor* d =
        pool->FindServiceByName(service);
    ASSERT_NE(d, nullptr) << service;
    for (int i = 0; i < d->method_count(); ++i) {
      methods.insert("/" + std::string(service) + "/" + d->method(i)->name());
    }
  }
  // gRPC's health service (its descriptor is not in this pool).
  methods.insert("/grpc.health.v1.Health/Check");
  methods.insert("/grpc.health.v1.Health/Watch");
  std::set<std::string> ruled;
  int index = 0;
  for (const RpcRule& rule : kRpcRules) {
    EXPECT_EQ(static_cast<int>(rule.rpc), index++) << rule.method;
    EXPECT_TRUE(ruled.insert(rule.method).second)
        << rule.method << " listed twice";
  }
  // The web page's rows ("GET /api/...") are not gRPC methods.
  for (auto it = ruled.begin(); it != ruled.end();) {
    it = (*it)[0] == '/' ? std::next(it) : ruled.erase(it);
  }
  EXPECT_EQ(ruled, methods)
      << "every RPC needs one row in kRpcRules (authorization.cc)";
}

class AuthorizerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<TokenTable> t = TokenTable::Parse(
        "# comment\n" + HashToken("tok-a") + " team-a submitter\n" +
            HashToken("tok-b") + " team-b submitter\n" + HashToken("tok-ops") +
            " ops operator\n" + HashToken("tok-w") + " pool-1 worker\n",
        "tokens");
    ASSERT_TRUE(t.ok()) << t.status();
    tokens_ = std::move(*t);
    builds_["b-a"] = {"team-a", false, "sha256:aa", ""};
    builds_["run-a"] = {"team-a", true, "sha256:cc", "pool-1"};
    builds_["run-other"] = {"team-a", true, "sha256:dd", "pool-2"};
  }

  Authorizer Make(bool tls, bool mutual, bool with_tokens) {
    AuthorizerOptions o;
    o.tls = tls;
    o.mutual_tls = mutual;
    o.worker_names = "worker-*";
    o.operator_names = "ops-*";
    o.tokens = with_tokens ? &tokens_ : nullptr;
    return Authorizer(
        o, [this](const std::string& id) -> absl::StatusOr<BuildAccess> {
          auto it = builds_.find(id);
          if (it == builds_.end()) return absl::NotFoundError("build " + id);
          return it->second;
        });
  }

  static Credentials Token(const std::string& token, bool loopback = true) {
    Credentials c;
    c.authorization_present = true;
    c.bearer = token;
    c.loopback_peer = loopback;
    return c;
  }
  static Credentials Cert(const std::string& name) {
    Credentials c;
    c.certificate_names = {name};
    return c;
  }

  TokenTable tokens_;
  absl::flat_hash_map<std::string, BuildAccess> builds_;
};

TEST_F(AuthorizerTest, OpenSchedulerLetsEveryoneDoEverything) {
  Authorizer a = Make(false, false, false);
  ASSERT_TRUE(a.open());
  absl::StatusOr<Identity> who = a.Authenticate(Credentials{});
  ASSERT_TRUE(who.ok());
  EXPECT_TRUE(a.Check(*who, Rpc::kDrain).ok());
  EXPECT_TRUE(a.Check(*who, Rpc::kGetBuild, "b-a").ok());
  EXPECT_TRUE(a.Check(*who, Rpc::kFetchContext, "run-a", "sha256:cc").ok());
  EXPECT_EQ(a.ListFilter(*who), "");
}

TEST_F(AuthorizerTest, SubmitterSeesOnlyItsOwnBuilds) {
  Authorizer a = Make(true, false, true);
  absl::StatusOr<Identity> b = a.Authenticate(Token("tok-b"));
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->name, "team-b");
  for (Rpc rpc :
       {Rpc::kWatch, Rpc::kGetBuild, Rpc::kCancel, Rpc::kFetchOutput}) {
    absl::Status st = a.Check(*b, rpc, "b-a");
    EXPECT_TRUE(absl::IsPermissionDenied(st)) << st;
    EXPECT_THAT(std::string(st.message()),
                HasSubstr("token \"team-b\" (submitter)"));
    EXPECT_THAT(std::string(st.message()), HasSubstr("only its own builds"));
  }
  absl::StatusOr<Identity> owner = a.Authenticate(Token("tok-a"));
  ASSERT_TRUE(owner.ok());
  EXPECT_TRUE(a.Check(*owner, Rpc::kGetBuild, "b-a").ok());
  EXPECT_EQ(a.ListFilter(*owner), "team-a");
  EXPECT_TRUE(absl::IsPermissionDenied(a.Check(*owner, Rpc::kListWorkers)));
  EXPECT_TRUE(absl::IsPermissionDenied(a.Check(*owner, Rpc::kConnect)));
  // A missing build is NOT_FOUND for everyone.
  EXPECT_TRUE(absl::IsNotFound(a.Check(*owner, Rpc::kGetBuild, "nope")));
}

TEST_F(AuthorizerTest, OperatorActsOnAll) {
  Authorizer a = Make(true, false, true);
  absl::StatusOr<Identity> ops = a.Authenticate(Token("tok-ops"));
  ASSERT_TRUE(ops.ok());
  for (Rpc rpc :
       {Rpc::kWatch, Rpc::kGetBuild, Rpc::kCancel, Rpc::kFetchOutput}) {
    EXPECT_TRUE(a.Check(*ops, rpc, "b-a").ok());
  }
  EXPECT_TRUE(a.Check(*ops, Rpc::kDrain).ok());
  EXPECT_EQ(a.ListFilter(*ops), "");
  EXPECT_TRUE(absl::IsPermissionDenied(a.Check(*ops, Rpc::kConnect)));
}

TEST_F(AuthorizerTest, WorkerReadsOnlyItsLeasesContexts) {
  Authorizer a = Make(true, false, true);
  absl::StatusOr<Identity> w = a.Authenticate(Token("tok-w"));
  ASSERT_TRUE(w.ok());
  EXPECT_TRUE(a.Check(*w, Rpc::kConnect).ok());
  EXPECT_TRUE(a.Check(*w, Rpc::kFetchContext, "run-a", "sha256:cc").ok());
  absl::Status st = a.Check(*w, Rpc::kFetchContext, "run-other", "sha256:dd");
  EXPECT_TRUE(absl::IsPermissionDenied(st));
  EXPECT_THAT(std::string(st.message()), HasSubstr("leased to another"));
  st = a.Check(*w, Rpc::kFetchContext, "run-a", "sha256:dd");
  EXPECT_THAT(std::string(st.message()), HasSubstr("not the context"));
  st = a.Check(*w, Rpc::kFetchContext, "b-a", "sha256:aa");
  EXPECT_THAT(std::string(st.message()), HasSubstr("not running"));
  EXPECT_TRUE(absl::IsPermissionDenied(a.Check(*w, Rpc::kSubmit)));
}

TEST_F(AuthorizerTest, CertificatesTakeRolesFromTheGlobs) {
  Authorizer a = Make(true, true, false);
  absl::StatusOr<Identity> w = a.Authenticate(Cert("worker-7"));
  ASSERT_TRUE(w.ok());
  EXPECT_TRUE(w->worker);
  EXPECT_FALSE(w->submitter);
  absl::StatusOr<Identity> ci = a.Authenticate(Cert("ci"));
  ASSERT_TRUE(ci.ok());
  absl::Status st = a.Check(*ci, Rpc::kConnect);
  EXPECT_TRUE(absl::IsPermissionDenied(st));
  EXPECT_THAT(std::string(st.message()),
              HasSubstr("certificate \"ci\" (submitter) may not call Connect"));
  absl::StatusOr<Identity> ops = a.Authenticate(Cert("ops-1"));
  ASSERT_TRUE(ops.ok());
  EXPECT_TRUE(a.Check(*ops, Rpc::kUndrain).ok());
}

TEST_F(AuthorizerTest, BadOrMissingTokensAreUnauthenticated) {
  Authorizer a = Make(false, false, true);
  EXPECT_FALSE(a.open());
  absl::StatusOr<Identity> who = a.Authenticate(Token("wrong"));
  EXPECT_TRUE(absl::IsUnauthenticated(who.status()));
  EXPECT_THAT(std::string(who.status().message()), HasSubstr("--tokens-file"));
  who = a.Authenticate(Credentials{});
  EXPECT_TRUE(absl::IsUnauthenticated(who.status()));
  EXPECT_THAT(std::string(who.status().message()),
              HasSubstr("LONGSHORE_TOKEN"));
  // Plaintext from the network: refused even when the token is right.
  who = a.Authenticate(Token("tok-a", /*loopback=*/false));
  EXPECT_TRUE(absl::IsUnauthenticated(who.status()));
  EXPECT_THAT(std::string(who.status().message()), HasSubstr("plaintext"));
  // ...but over TLS it is fine.
  Authorizer tls = Make(true, false, true);
  EXPECT_TRUE(tls.Authenticate(Token("tok-a", false)).ok());
  Credentials malformed;
  malformed.authorization_present = true;
  EXPECT_TRUE(absl::IsUnauthenticated(a.Authenticate(malformed).status()));
}

TEST(TokenTableTest, ErrorsNameTheLine) {
  absl::StatusOr<TokenTable> t =
      TokenTable::Parse("\n" + HashToken("x") + " a-b submitter extra\n", "f");
  EXPECT_THAT(std::string(t.status().message()), HasSubstr("f:2:"));
  t = TokenTable::Parse("lst_abc name submitter\n", "f");
  EXPECT_THAT(std::string(t.status().message()),
              HasSubstr("a token, not its hash"));
  t = TokenTable::Parse(HashToken("x") + " team admin\n", "f");
  EXPECT_THAT(std::string(t.status().message()), HasSubstr("f:1: role"));
  t = TokenTable::Parse(HashToken("x") + " bad$name worker\n", "f");
  EXPECT_THAT(std::string(t.status().message()), HasSubstr("bad$name"));
  t = TokenTable::Parse(
      HashToken("x") + " a worker\n" + HashToken("x") + " b worker\n", "f");
  EXPECT_THAT(std::string(t.status().message()), HasSubstr("f:2: this hash"));
}

TEST(TokenTableTest, NewTokensAreDistinctAndFindable) {
  absl::StatusOr<std::string> a = NewToken();
  absl::StatusOr<std::string> b = NewToken();
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(*a, *b);
  EXPECT_EQ(a->size(), 4u + 64u);
  absl::StatusOr<TokenTable> t =
      TokenTable::Parse(HashToken(*a) + " ci operator\n", "f");
  ASSERT_TRUE(t.ok()) << t.status();
  ASSERT_NE(t->Find(*a), nullptr);
  EXPECT_EQ(t->Find(*a)->role, Role::kOperator);
  EXPECT_EQ(t->Find(*b), nullptr);
}

}  // namespace
}  // namespace longshore::scheduler
