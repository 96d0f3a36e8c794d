// The Dockerfile frontend, which reads every submitted Dockerfile: the parser
// (both levels and both dumps), the build plan and stage evaluation, and the
// shell-word lexer. Seeded from BuildKit's conformance files as well as
// fuzz/corpus/dockerfile. (.dockerignore has a target of its own.)
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "dockerfile/build_plan.h"
#include "dockerfile/parser.h"
#include "dockerfile/shell_lex.h"
#include "dockerfile/stage_evaluator.h"

namespace {

using namespace longshore::dockerfile;  // NOLINT: a fuzz driver

void FuzzDockerfile(const std::string& text) {
  absl::StatusOr<ParsedDockerfile> ast = ParseAst(text);
  if (!ast.ok()) return;
  (void)DumpAst(*ast);
  (void)DumpJson(*ast);
  if (!Validate(*ast).ok()) return;
  PlanOptions opts;
  opts.build_args = {{"A", "1"}, {"HTTP_PROXY", "p"}};
  absl::StatusOr<BuildPlan> plan = Plan(*ast, opts);
  if (!plan.ok()) return;
  for (int s : plan->order) {
    ImageConfig base;
    base.on_build = {"RUN echo trigger"};
    StageEvaluator eval(*plan, s, base);
    (void)eval.BaseTriggers();
    for (const Node* node : plan->stages[s].instructions) {
      if (!eval.Next(*node).ok()) break;
    }
  }
}

void FuzzWord(const std::string& word) {
  const std::vector<std::string> env = {"PWD=/home", "EMPTY=", "X=a b c",
                                        "P=/usr/local/bin/tool.tar.gz"};
  for (char escape : {'\\', '`'}) {
    ShellLex lex(escape);
    (void)lex.ProcessWord(word, env);
    (void)lex.ProcessWords(word, env);
    lex.set_raw_quotes(true);
    lex.set_raw_escapes(true);
    lex.set_skip_unset_env(true);
    (void)lex.ProcessWordWithMatches(word, env);
  }
  (void)ParseHeredocWord(word);
  (void)GoQuote(word);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  FuzzDockerfile(input);
  // Short inputs are shell words as well; longer ones are only worth it as
  // Dockerfiles.
  if (size <= 512) FuzzWord(input);
  return 0;
}
