// Expands one stage's instructions, in order, against the stage's image config
// and ARG scope, and turns each into a plain-data step for the executor.
#ifndef LONGSHORE_DOCKERFILE_STAGE_EVALUATOR_H_
#define LONGSHORE_DOCKERFILE_STAGE_EVALUATOR_H_

#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "dockerfile/build_plan.h"
#include "dockerfile/image_config.h"
#include "dockerfile/parser.h"
#include "dockerfile/shell_lex.h"

namespace longshore::dockerfile {

struct MountSpec {
  std::string type;  // bind|cache|tmpfs|secret|ssh
  std::string target, source, from, id, sharing, mode;
  bool readonly = true;  // bind defaults to read-only, cache to read-write
  std::map<std::string, std::string> options;  // uid, gid, size, required...
  int from_stage = -1;  // when `from` names a stage of this Dockerfile
};

struct RunStep {
  std::vector<std::string> argv;
  // Complete process env: config env + ARGs in scope (config wins), "K=V".
  std::vector<std::string> env;
  std::string network;   // "" = default, else none|host|default
  std::string security;  // "" = sandbox, else insecure|sandbox
  std::vector<MountSpec> mounts;
  std::string user;
  std::string workdir;
  // Heredocs to materialize as files (a single `RUN <<EOF` whose body starts
  // with "#!"): each is mounted read-only at /dev/pipes/<name>, mode 0755.
  std::vector<Heredoc> heredoc_files;
};

struct CopyStep {
  bool add = false;
  std::vector<std::string> sources;  // expanded, relative to context or --from
  // Expanded; absolute, resolved against WORKDIR; keeps a trailing '/'.
  std::string dest;
  std::string from;  // "" = context, else stage name/index or image ref
  int from_stage = -1;
  std::string chown, chmod;
  bool link = false;
  bool parents = false;
  // COPY <<EOF /dest: bodies with expansion (unless quoted) and chomp applied;
  // the name is the file name to create under dest.
  std::vector<Heredoc> inline_files;
  std::vector<std::string> excludes;
  bool keep_git_dir = false;
  std::string checksum;
  bool unpack = true;  // ADD --unpack (default true for local archives)
};

struct ExpandedStep {
  enum Kind { kRun, kCopy, kWorkdir, kConfigOnly } kind = kConfigOnly;
  RunStep run;
  CopyStep copy;
  std::string workdir;  // for kWorkdir: absolute path to create
  // History text, as docker writes it: "RUN /bin/sh -c make", "RUN |2 A=1 B=2
  // /bin/sh -c make", "COPY x /y # buildkit", "ENV A=b", ...
  std::string created_by;
  bool empty_layer = true;  // history's empty_layer (false for RUN/COPY/ADD)
  // The expanded instruction and the build args it used: what a cache key
  // hashes (with the parent key and, for COPY/ADD, the source contents).
  std::string cache_text;
  int line = 0;
  std::string instruction;  // original text
};

class StageEvaluator {
 public:
  // `plan` must outlive the evaluator. `base_config` is the config of the
  // base image (or of the base stage after it was evaluated), or empty for
  // scratch.
  StageEvaluator(const BuildPlan& plan, int stage_index,
                 ImageConfig base_config);

  // Expands `node` (one of plan.stages[stage_index].instructions, or a base
  // trigger) and applies its effect on the config.
  absl::StatusOr<ExpandedStep> Next(const Node& node);

  const ImageConfig& config() const { return config_; }

  // ONBUILD triggers of the base config, parsed, to run before the stage's own
  // instructions.
  absl::StatusOr<std::vector<Node>> BaseTriggers() const;

  // The environment used to expand words at this point: ARGs in scope, then
  // the config env (which wins).
  std::vector<std::string> ExpansionEnv() const;
  // Build args declared in this stage so far, "K=V" (value as used).
  std::vector<std::string> ArgsInScope() const;
  // Names of --build-args this stage consumed through ARG.
  const std::set<std::string>& used_build_args() const {
    return used_build_args_;
  }

 private:
  absl::Status ErrorAt(const Node& node, absl::string_view what) const;
  absl::StatusOr<std::string> Expand(const Node& node, absl::string_view word);
  absl::StatusOr<ExpandedStep> Run(const Node& node, ExpandedStep step);
  absl::StatusOr<ExpandedStep> Copy(const Node& node, ExpandedStep step);
  absl::StatusOr<ExpandedStep> Arg(const Node& node, ExpandedStep step);
  absl::StatusOr<ExpandedStep> Healthcheck(const Node& node, ExpandedStep step);
  std::vector<std::string> RunEnv() const;
  std::string ArgPrefix() const;
  int ResolveStage(absl::string_view name) const;

  const BuildPlan& plan_;
  int stage_index_;
  ImageConfig config_;
  ImageConfig base_config_;
  ShellLex lex_;
  // ARGs declared in this stage, in order of first declaration; a value of
  // nullopt-like (second = false) means declared without value.
  std::vector<std::pair<std::string, std::string>> args_;
  std::set<std::string> args_unset_;
  std::set<std::string> used_build_args_;
  bool cmd_set_in_stage_ = false;  // a CMD of this stage survives ENTRYPOINT
};

// Resolves `path` against the working directory `cwd` (absolute), as WORKDIR
// and COPY destinations do; keeps a trailing '/'.
std::string ResolvePath(absl::string_view cwd, absl::string_view path);

// Parses a Go duration ("30s", "1m30s", "500ms"); used by HEALTHCHECK flags.
absl::StatusOr<int64_t> ParseGoDurationNs(absl::string_view text);

}  // namespace longshore::dockerfile

#endif  // LONGSHORE_DOCKERFILE_STAGE_EVALUATOR_H_
