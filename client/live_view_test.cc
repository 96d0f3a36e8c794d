#include "client/live_view.h"

#include "gtest/gtest.h"

namespace longshore::client {
namespace {

constexpr int64_t kSec = 1000000000;

v1::StepRef Ref(int index, const std::string& stage, const std::string& text) {
  v1::StepRef r;
  r.set_index(index);
  r.set_total(4);
  r.set_stage(stage);
  r.set_instruction(text);
  return r;
}

v1::BuildEvent Started(int64_t t, const v1::StepRef& r) {
  v1::BuildEvent e;
  e.set_time_unix_nanos(t);
  *e.mutable_step_started()->mutable_step() = r;
  return e;
}

v1::BuildEvent Log(int64_t t, const v1::StepRef& r, const std::string& data) {
  v1::BuildEvent e;
  e.set_time_unix_nanos(t);
  *e.mutable_log()->mutable_step() = r;
  e.mutable_log()->set_data(data);
  return e;
}

TEST(LiveViewTest, RunningStepHasATickingTimerAndItsTail) {
  LiveState s;
  v1::BuildEvent a;
  a.set_time_unix_nanos(100 * kSec);
  a.mutable_assigned()->set_worker_id("w1");
  s.Apply(a);
  auto make = Ref(2, "app", "RUN make");
  s.Apply(Started(101 * kSec, make));
  std::string out;
  for (int i = 0; i < 9; ++i) out += "line " + std::to_string(i) + "\n";
  s.Apply(Log(102 * kSec, make, out + "partial"));
  auto f1 = s.Frame(103 * kSec, 80, 20);
  ASSERT_GE(f1.size(), 2u);
  EXPECT_NE(f1[0].find("[+] Building 3.0s (0/4) on w1"), std::string::npos)
      << f1[0];
  EXPECT_NE(f1[1].find("[app 2/4] RUN make"), std::string::npos);
  EXPECT_EQ(f1[1].substr(f1[1].size() - 4), "2.0s");
  // The last lines only (six, the partial one included).
  ASSERT_EQ(f1.size(), 2u + LiveState::kTailLines);
  EXPECT_EQ(f1[2], " => => # line 4");
  EXPECT_EQ(f1.back(), " => => # partial");
  auto f2 = s.Frame(105 * kSec + kSec / 2, 80, 20);
  EXPECT_EQ(f2[1].substr(f2[1].size() - 4), "4.5s");
}

TEST(LiveViewTest, FinishedAndCachedStepsBecomePermanentLines) {
  LiveState s;
  auto copy = Ref(1, "", "COPY . /src");
  v1::BuildEvent c;
  c.set_time_unix_nanos(kSec);
  *c.mutable_step_cached()->mutable_step() = copy;
  auto lines = s.Apply(c);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0], " => CACHED [1/4] COPY . /src");
  auto run = Ref(2, "", "RUN true");
  s.Apply(Started(kSec, run));
  v1::BuildEvent f;
  f.set_time_unix_nanos(3 * kSec);
  *f.mutable_step_finished()->mutable_step() = run;
  f.mutable_step_finished()->set_duration_ms(1234);
  lines = s.Apply(f);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0], " => [2/4] RUN true\t1.2s");
  EXPECT_EQ(s.Frame(4 * kSec, 80, 20).size(), 1u);  // header only
  v1::BuildEvent done;
  done.mutable_build_finished()->set_result(v1::SUCCEEDED);
  done.mutable_build_finished()->set_image_digest("sha256:abc");
  done.mutable_build_finished()->add_references("app:1");
  done.mutable_build_finished()->set_duration_ms(2500);
  s.Apply(done);
  auto sum = s.Summary({"filesystem to /out"});
  ASSERT_EQ(sum.size(), 4u);
  EXPECT_EQ(sum[0], "[+] Built in 2.5s: 1 steps run, 1 cached");
  EXPECT_EQ(sum[1], " => image sha256:abc");
  EXPECT_EQ(sum[2], " => naming app:1");
  EXPECT_EQ(sum[3], " => filesystem to /out");
}

TEST(LiveViewTest, ParallelStagesSideBySideWhenWideEnough) {
  LiveState s;
  auto a = Ref(2, "alpha", "RUN a");
  auto b = Ref(3, "beta", "RUN b");
  s.Apply(Started(kSec, a));
  s.Apply(Started(kSec, b));
  s.Apply(Log(kSec, a, "from alpha\n"));
  s.Apply(Log(kSec, b, "from beta\n"));
  auto wide = s.Frame(2 * kSec, 120, 20);
  ASSERT_EQ(wide.size(), 3u);
  EXPECT_NE(wide[1].find("[alpha 2/4]"), std::string::npos);
  EXPECT_NE(wide[1].find("[beta 3/4]"), std::string::npos);
  EXPECT_NE(wide[2].find("from alpha"), std::string::npos);
  EXPECT_NE(wide[2].find("from beta"), std::string::npos);
  for (const auto& l : wide) EXPECT_LE(l.size(), 120u) << l;
  auto narrow = s.Frame(2 * kSec, 60, 20);
  ASSERT_EQ(narrow.size(), 5u);  // one under the other
  for (const auto& l : narrow) EXPECT_LE(l.size(), 60u) << l;
  // Never taller than the terminal.
  EXPECT_LE(s.Frame(2 * kSec, 60, 3).size(), 3u);
}

TEST(LiveViewTest, FitWidthDropsEscapesAndKeepsCharactersWhole) {
  EXPECT_EQ(FitWidth("abc\x1b[2Jdef", 80), "abc[2Jdef");
  EXPECT_EQ(FitWidth("a\tb", 80), "a b");
  EXPECT_EQ(FitWidth("abcdef", 3), "abc");
  EXPECT_EQ(FitWidth("h\xc3\xa9llo", 2), "h\xc3\xa9");
  EXPECT_EQ(FitWidth("\xe2\x82\xac\xe2\x82\xac", 1), "\xe2\x82\xac");
}

TEST(LiveViewTest, CarriageReturnShowsTheLastRedraw) {
  LiveState s;
  auto r = Ref(1, "", "RUN fetch");
  s.Apply(Started(kSec, r));
  s.Apply(Log(kSec, r, "10%\r50%\r90%\n"));
  auto f = s.Frame(2 * kSec, 80, 20);
  ASSERT_EQ(f.size(), 3u);
  EXPECT_EQ(f[2], " => => # 90%");
}

}  // namespace
}  // namespace longshore::client
