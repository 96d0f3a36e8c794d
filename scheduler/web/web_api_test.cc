#include "scheduler/web/web_api.h"

#include <memory>
#include <string>

#include "common/file_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "prometheus/registry.h"
#include "scheduler/blob_store.h"
#include "scheduler/build_journal.h"
#include "scheduler/event_log.h"
#include "scheduler/scheduler_metrics.h"
#include "scheduler/tokens.h"
#include "scheduler/web/event_stream.h"
#include "scheduler/web/json_text.h"

namespace longshore::scheduler::web {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// A real coordinator and journal holding builds of two submitters, and the
// web API in front of them with a tokens file of both, an operator and a
// worker.
class WebApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tmp = getenv("TEST_TMPDIR");
    auto dir = MakeTempDir(tmp != nullptr ? tmp : "/tmp", "web-api-test-");
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_ = *dir;
    registry_ = std::make_shared<prometheus::Registry>();
    metrics_ = std::make_unique<SchedulerMetrics>(*registry_);
    auto journal = BuildJournal::Open(dir_ + "/journal.db");
    ASSERT_TRUE(journal.ok()) << journal.status();
    journal_ = std::move(*journal);
    auto blobs = BlobStore::Open(dir_);
    ASSERT_TRUE(blobs.ok()) << blobs.status();
    blobs_ = std::move(*blobs);
    events_ = std::make_unique<EventLog>(journal_.get());
    coordinator_ = std::make_unique<BuildCoordinator>(
        CoordinatorOptions(), journal_.get(), events_.get(), blobs_.get(),
        metrics_.get());
    ASSERT_TRUE(coordinator_->Recover().ok());
    auto tokens = TokenTable::Parse(
        HashToken("tok-alice") + " alice submitter\n" + HashToken("tok-bob") +
            " bob submitter\n" + HashToken("tok-ops") + " ops operator\n" +
            HashToken("tok-w") + " pool worker\n",
        "tokens");
    ASSERT_TRUE(tokens.ok()) << tokens.status();
    tokens_ = std::move(*tokens);
    alice_1_ = Submit("alice", "FROM scratch\nLABEL n=1\n");
    alice_2_ = Submit("alice", "FROM scratch\nLABEL n=2\n");
    bob_1_ = Submit("bob", "FROM scratch\nLABEL secret-of=bob\n");
  }

  void TearDown() override {
    coordinator_.reset();
    events_.reset();
    journal_.reset();
    ASSERT_TRUE(RemoveTree(dir_).ok());
  }

  std::string Submit(const std::string& submitter,
                     const std::string& dockerfile) {
    longshore::v1::BuildSpec spec;
    spec.set_dockerfile(dockerfile);
    spec.set_submitter(submitter);
    auto id = coordinator_->Submit(spec);
    EXPECT_TRUE(id.ok()) << id.status();
    return id.ok() ? *id : "";
  }

  Authorizer TokenAuthorizer() {
    AuthorizerOptions o;
    o.tokens = &tokens_;
    return Authorizer(
        o, [this](const std::string& id) { return coordinator_->Access(id); });
  }

  static Credentials Token(const std::string& token, bool loopback = true) {
    Credentials c;
    c.authorization_present = true;
    c.bearer = token;
    c.loopback_peer = loopback;
    return c;
  }

  std::string dir_;
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<SchedulerMetrics> metrics_;
  std::unique_ptr<BuildJournal> journal_;
  std::unique_ptr<BlobStore> blobs_;
  std::unique_ptr<EventLog> events_;
  std::unique_ptr<BuildCoordinator> coordinator_;
  TokenTable tokens_;
  std::string alice_1_, alice_2_, bob_1_;
};

TEST_F(WebApiTest, ASubmitterListsOnlyItsOwnBuildsWithQueuePositions) {
  Authorizer authz = TokenAuthorizer();
  WebApi api(coordinator_.get(), &authz);
  JsonReply r = api.ListBuilds(Token("tok-alice"), 10, absl::Now());
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_THAT(r.body, HasSubstr(alice_1_));
  EXPECT_THAT(r.body, HasSubstr(alice_2_));
  EXPECT_THAT(r.body, Not(HasSubstr(bob_1_)));
  EXPECT_THAT(r.body, Not(HasSubstr("\"bob\"")));
  // Positions count every queued build: alice's are first and second.
  EXPECT_THAT(r.body, HasSubstr("\"position\":1"));
  EXPECT_THAT(r.body, HasSubstr("\"position\":2"));

  r = api.ListBuilds(Token("tok-bob"), 10, absl::Now());
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_THAT(r.body, HasSubstr(bob_1_));
  EXPECT_THAT(r.body, HasSubstr("\"position\":3"));
  EXPECT_THAT(r.body, Not(HasSubstr(alice_1_)));
}

TEST_F(WebApiTest, AnOperatorListsEveryBuildAndTheWorkers) {
  Authorizer authz = TokenAuthorizer();
  WebApi api(coordinator_.get(), &authz);
  JsonReply r = api.ListBuilds(Token("tok-ops"), 10, absl::Now());
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_THAT(r.body, HasSubstr(alice_1_));
  EXPECT_THAT(r.body, HasSubstr(bob_1_));
  r = api.ListWorkers(Token("tok-ops"), absl::Now());
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_THAT(r.body, HasSubstr("\"workers\":["));
  r = api.GetBuild(Token("tok-ops"), bob_1_, absl::Now());
  EXPECT_EQ(r.status, 200) << r.body;
}

TEST_F(WebApiTest, AnotherSubmittersBuildIsForbiddenOnEveryPerBuildRow) {
  Authorizer authz = TokenAuthorizer();
  WebApi api(coordinator_.get(), &authz);
  JsonReply r = api.GetBuild(Token("tok-alice"), bob_1_, absl::Now());
  EXPECT_EQ(r.status, 403) << r.body;
  EXPECT_THAT(r.body, HasSubstr("another submitter owns"));
  EXPECT_THAT(r.body, Not(HasSubstr("secret-of")));
  for (Rpc rpc : {Rpc::kWebGetBuild, Rpc::kWebBuildEvents, Rpc::kWebBuildLog,
                  Rpc::kWebFetchOutput}) {
    EXPECT_TRUE(absl::IsPermissionDenied(
        api.Authorize(Token("tok-alice"), rpc, bob_1_).status()));
    EXPECT_TRUE(api.Authorize(Token("tok-bob"), rpc, bob_1_).ok());
    EXPECT_TRUE(api.Authorize(Token("tok-ops"), rpc, bob_1_).ok());
  }
  r = api.GetBuild(Token("tok-bob"), bob_1_, absl::Now());
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_THAT(r.body, HasSubstr("LABEL secret-of=bob"));
  EXPECT_THAT(r.body, HasSubstr("\"state\":\"QUEUED\""));
  r = api.GetBuild(Token("tok-bob"), "00000000000000000000", absl::Now());
  EXPECT_EQ(r.status, 404) << r.body;
}

TEST_F(WebApiTest, SubmittersAndWorkersAreNotOperators) {
  Authorizer authz = TokenAuthorizer();
  WebApi api(coordinator_.get(), &authz);
  EXPECT_EQ(api.ListWorkers(Token("tok-alice"), absl::Now()).status, 403);
  // A worker's token reads no build.
  EXPECT_EQ(api.ListBuilds(Token("tok-w"), 10, absl::Now()).status, 403);
  EXPECT_EQ(api.GetBuild(Token("tok-w"), alice_1_, absl::Now()).status, 403);
  JsonReply who = api.Whoami(Token("tok-alice"));
  ASSERT_EQ(who.status, 200) << who.body;
  EXPECT_THAT(who.body, HasSubstr("\"name\":\"alice\""));
  EXPECT_THAT(who.body, HasSubstr("\"roles\":[\"submitter\"]"));
}

TEST_F(WebApiTest, MissingWrongOrExposedTokensAreUnauthenticated) {
  Authorizer authz = TokenAuthorizer();
  WebApi api(coordinator_.get(), &authz);
  Credentials none;
  none.loopback_peer = true;
  EXPECT_EQ(api.ListBuilds(none, 10, absl::Now()).status, 401);
  EXPECT_EQ(api.Whoami(none).status, 401);
  EXPECT_EQ(api.ListBuilds(Token("tok-nope"), 10, absl::Now()).status, 401);
  Credentials malformed = Token("");
  EXPECT_EQ(api.GetBuild(malformed, alice_1_, absl::Now()).status, 401);
  // Plaintext from off loopback: the token is refused, as on gRPC.
  JsonReply r =
      api.ListBuilds(Token("tok-alice", /*loopback=*/false), 10, absl::Now());
  EXPECT_EQ(r.status, 401);
  EXPECT_THAT(r.body, HasSubstr("plaintext"));
}

TEST_F(WebApiTest, AnOpenSchedulerShowsEverythingToAnyone) {
  Authorizer authz(AuthorizerOptions(), [this](const std::string& id) {
    return coordinator_->Access(id);
  });
  WebApi api(coordinator_.get(), &authz);
  Credentials anyone;
  JsonReply r = api.ListBuilds(anyone, 10, absl::Now());
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_THAT(r.body, HasSubstr(alice_1_));
  EXPECT_THAT(r.body, HasSubstr(bob_1_));
  EXPECT_EQ(api.ListWorkers(anyone, absl::Now()).status, 200);
  EXPECT_THAT(api.Whoami(anyone).body, HasSubstr("\"open\":true"));
}

TEST(JsonQuoteTest, EscapesAndRepairsUtf8) {
  EXPECT_EQ(JsonQuote("a\"b\\c\n\t"), "\"a\\\"b\\\\c\\n\\t\"");
  EXPECT_EQ(JsonQuote("</script>"), "\"\\u003c/script\\u003e\"");
  EXPECT_EQ(JsonQuote(std::string("\x01", 1)), "\"\\u0001\"");
  EXPECT_EQ(JsonQuote("caf\xc3\xa9"), "\"caf\xc3\xa9\"");
  // A lone continuation byte, a truncated sequence, an overlong '/'.
  EXPECT_EQ(JsonQuote("\x80"), "\"\\ufffd\"");
  EXPECT_EQ(JsonQuote("\xe2\x82"), "\"\\ufffd\\ufffd\"");
  EXPECT_EQ(JsonQuote("\xc0\xaf"), "\"\\ufffd\\ufffd\"");
}

TEST(EventJsonTest, LogEventsCarryTextButNotWhereTheJournalKeepsThem) {
  longshore::v1::BuildEvent ev;
  ev.set_sequence(7);
  ev.set_time_unix_nanos(int64_t{1700000000123} * 1000000);
  auto* log = ev.mutable_log();
  log->mutable_step()->set_index(2);
  log->mutable_step()->set_stage("build");
  log->set_stream(longshore::v1::BuildEvent::Log::STDERR);
  log->set_data("hello\n\xff");
  log->set_stored_offset(4096);
  log->set_stored_length(7);
  std::string json = EventJson(ev);
  EXPECT_THAT(json, HasSubstr("\"seq\":7"));
  EXPECT_THAT(json, HasSubstr("\"time_ms\":1700000000123"));
  EXPECT_THAT(json, HasSubstr("\"kind\":\"log\""));
  EXPECT_THAT(json, HasSubstr("\"stream\":\"stderr\""));
  EXPECT_THAT(json, HasSubstr("\"text\":\"hello\\n\\ufffd\""));
  EXPECT_THAT(json, Not(HasSubstr("4096")));
  std::string sse = SseMessage(ev);
  EXPECT_EQ(sse.rfind("id: 7\nevent: build\ndata: {", 0), 0u) << sse;
  EXPECT_EQ(sse.substr(sse.size() - 2), "\n\n");
  EXPECT_EQ(sse.find('\n', sse.find("data: ")), sse.size() - 2);
}

TEST_F(WebApiTest, TheEventStreamSendsEverythingThenEndsAtTheFinish) {
  longshore::v1::BuildEvent started;
  started.mutable_step_started()->mutable_step()->set_index(1);
  ASSERT_TRUE(events_->Append("b-x", started).ok());
  std::string sent;
  std::atomic<bool> stopping{false};
  EventStream stream(events_.get(), "b-x", 0, &stopping);
  auto write = [&sent](absl::string_view s) {
    sent.append(s.data(), s.size());
    return true;
  };
  EXPECT_TRUE(stream.Pump(write, absl::Milliseconds(10)));
  EXPECT_THAT(sent, HasSubstr("\"kind\":\"step_started\""));
  EXPECT_EQ(stream.after_sequence(), 1u);
  // Nothing new: it waits, and stays open.
  EXPECT_TRUE(stream.Pump(write, absl::Milliseconds(10)));
  longshore::v1::BuildEvent done;
  done.mutable_build_finished()->set_result(longshore::v1::SUCCEEDED);
  ASSERT_TRUE(events_->Append("b-x", done).ok());
  EXPECT_FALSE(stream.Pump(write, absl::Milliseconds(10)));
  EXPECT_THAT(sent, HasSubstr("\"result\":\"SUCCEEDED\""));
  // A client that is gone ends the stream too.
  EventStream again(events_.get(), "b-x", 0, &stopping);
  EXPECT_FALSE(again.Pump([](absl::string_view) { return false; }));
}

}  // namespace
}  // namespace longshore::scheduler::web
