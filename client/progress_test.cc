#include "client/progress.h"

#include <stdio.h>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace longshore::client {
namespace {

v1::StepRef Step(int index, const std::string& text) {
  v1::StepRef s;
  s.set_index(index);
  s.set_total(3);
  s.set_instruction(text);
  s.set_line(index + 1);
  return s;
}

std::string Render(ProgressMode mode, const std::vector<v1::BuildEvent>& evs) {
  char* buf = nullptr;
  size_t len = 0;
  FILE* f = open_memstream(&buf, &len);
  auto p = MakeProgressPrinter(mode, f);
  for (const auto& e : evs) p->OnEvent(e);
  fclose(f);
  std::string out(buf, len);
  free(buf);
  return out;
}

std::vector<v1::BuildEvent> Sample() {
  std::vector<v1::BuildEvent> evs(5);
  *evs[0].mutable_step_started()->mutable_step() = Step(1, "COPY a /a");
  evs[0].set_time_unix_nanos(1000000000);
  *evs[1].mutable_step_cached()->mutable_step() = Step(1, "COPY a /a");
  *evs[2].mutable_step_started()->mutable_step() = Step(2, "RUN make");
  evs[2].set_time_unix_nanos(2000000000);
  auto* log = evs[3].mutable_log();
  *log->mutable_step() = Step(2, "RUN make");
  log->set_data("line one\nline two\n");
  evs[3].set_time_unix_nanos(2500000000);
  auto* fin = evs[4].mutable_step_finished();
  *fin->mutable_step() = Step(2, "RUN make");
  fin->set_duration_ms(1234);
  return evs;
}

TEST(PlainProgress, BuildKitShape) {
  std::string out = Render(ProgressMode::kPlain, Sample());
  EXPECT_NE(out.find("#1 [1/3] COPY a /a\n#1 CACHED\n"), std::string::npos)
      << out;
  EXPECT_NE(out.find("#2 [2/3] RUN make\n"), std::string::npos) << out;
  EXPECT_NE(out.find("#2 0.500 line one\n#2 0.500 line two\n"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("#2 DONE 1.2s\n"), std::string::npos) << out;
}

TEST(JsonProgress, OneObjectPerEventWithAllKeys) {
  std::string out = Render(ProgressMode::kJson, Sample());
  std::vector<nlohmann::json> objs;
  size_t start = 0;
  while (start < out.size()) {
    size_t nl = out.find('\n', start);
    objs.push_back(nlohmann::json::parse(out.substr(start, nl - start)));
    start = nl + 1;
  }
  ASSERT_EQ(objs.size(), 5u);
  EXPECT_EQ(objs[0]["type"], "step_start");
  EXPECT_EQ(objs[1]["type"], "step_cached");
  EXPECT_EQ(objs[3]["type"], "log");
  EXPECT_EQ(objs[3]["data"], "line one\nline two\n");
  EXPECT_EQ(objs[4]["type"], "step_done");
  EXPECT_EQ(objs[4]["duration_ms"], 1234);
  EXPECT_EQ(objs[4]["step"], 2);
  EXPECT_EQ(objs[4]["instruction"], "RUN make");
  for (const auto& o : objs) {
    for (const char* k : {"type", "step", "instruction", "duration_ms",
                          "worker", "data", "image_digest", "error"}) {
      EXPECT_TRUE(o.contains(k)) << k << " missing in " << o.dump();
    }
  }
  v1::BuildEvent done;
  done.mutable_build_finished()->set_result(v1::SUCCEEDED);
  done.mutable_build_finished()->set_image_digest("sha256:abc");
  auto j = nlohmann::json::parse(EventToJson(done));
  EXPECT_EQ(j["type"], "build_done");
  EXPECT_EQ(j["image_digest"], "sha256:abc");
  v1::BuildEvent err;
  err.mutable_error()->set_message("boom");
  err.mutable_error()->set_line(4);
  j = nlohmann::json::parse(EventToJson(err));
  EXPECT_EQ(j["type"], "error");
  EXPECT_EQ(j["error"], "boom");
  EXPECT_EQ(j["line"], 4);
}

}  // namespace
}  // namespace longshore::client
