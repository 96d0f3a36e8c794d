#include "dockerfile/build_plan.h"

#include <algorithm>
#include <functional>
#include <map>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "dockerfile/image_config.h"
#include "dockerfile/instruction_flags.h"
#include "dockerfile/shell_lex.h"

namespace longshore::dockerfile {
namespace {

absl::Status ErrorAt(const ParsedDockerfile& df, const Node* node,
                     absl::string_view what) {
  if (node == nullptr) return absl::InvalidArgumentError(what);
  return absl::InvalidArgumentError(
      absl::StrCat(df.filename, ":", node->start_line, ": ", what));
}

// One ARG word: KEY or KEY=default (default still raw).
void SplitArg(const std::string& word, std::string* key,
              std::optional<std::string>* value) {
  size_t eq = word.find('=');
  if (eq == std::string::npos) {
    *key = word;
    value->reset();
  } else {
    *key = word.substr(0, eq);
    *value = word.substr(eq + 1);
  }
}

const std::string* FindBuildArg(const PlanOptions& opts,
                                const std::string& key) {
  const std::string* found = nullptr;
  for (const auto& kv : opts.build_args) {
    if (kv.first == key) found = &kv.second;
  }
  return found;
}

// The value of `from=` in a --mount spec, or "".
std::string MountFrom(absl::string_view spec) {
  for (absl::string_view field : absl::StrSplit(spec, ',')) {
    field = absl::StripAsciiWhitespace(field);
    if (absl::StartsWith(field, "from=")) {
      return std::string(field.substr(5));
    }
  }
  return "";
}

// The repository part of an image reference (no tag, no digest) must be
// lower-case; Docker rejects "FROM Ubuntu".
bool RepositoryHasUpperCase(absl::string_view ref) {
  size_t at = ref.find('@');
  if (at != absl::string_view::npos) ref = ref.substr(0, at);
  size_t slash = ref.rfind('/');
  size_t colon = ref.rfind(':');
  if (colon != absl::string_view::npos &&
      (slash == absl::string_view::npos || colon > slash)) {
    ref = ref.substr(0, colon);
  }
  // The registry host (first component with a '.' or ':' or "localhost") may
  // have any case.
  size_t first = ref.find('/');
  if (first != absl::string_view::npos) {
    absl::string_view host = ref.substr(0, first);
    if (absl::StrContains(host, ".") || absl::StrContains(host, ":") ||
        host == "localhost") {
      ref = ref.substr(first + 1);
    }
  }
  return std::any_of(ref.begin(), ref.end(),
                     [](char c) { return c >= 'A' && c <= 'Z'; });
}

}  // namespace

Platform ParsePlatform(absl::string_view spec) {
  std::vector<std::string> parts = absl::StrSplit(spec, '/');
  Platform p;
  p.os = parts.size() > 0 && !parts[0].empty() ? parts[0] : "linux";
  p.arch = parts.size() > 1 ? parts[1] : "amd64";
  p.variant = parts.size() > 2 ? parts[2] : "";
  p.os = absl::AsciiStrToLower(p.os);
  p.arch = absl::AsciiStrToLower(p.arch);
  return p;
}

bool IsProxyArg(absl::string_view name) {
  static const auto* proxies = new std::set<std::string>{
      "HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY",
      "ftp_proxy",  "NO_PROXY",   "no_proxy",    "ALL_PROXY",   "all_proxy"};
  return proxies->count(std::string(name)) > 0;
}

absl::StatusOr<BuildPlan> Plan(const ParsedDockerfile& df,
                               const PlanOptions& opts) {
  BuildPlan plan;
  plan.options = opts;
  plan.filename = df.filename;
  plan.escape = df.directives.escape;
  ShellLex lex(df.directives.escape);

  // Predefined platform args live in the global scope.
  const Platform target = ParsePlatform(opts.target_platform);
  const Platform build = ParsePlatform(opts.build_platform);
  auto platform_string = [](const Platform& p) {
    return p.variant.empty() ? absl::StrCat(p.os, "/", p.arch)
                             : absl::StrCat(p.os, "/", p.arch, "/", p.variant);
  };
  std::vector<std::string> global = {
      "TARGETPLATFORM=" + platform_string(target),
      "TARGETOS=" + target.os,
      "TARGETARCH=" + target.arch,
      "TARGETVARIANT=" + target.variant,
      "BUILDPLATFORM=" + platform_string(build),
      "BUILDOS=" + build.os,
      "BUILDARCH=" + build.arch,
      "BUILDVARIANT=" + build.variant,
  };
  std::set<std::string> declared;  // ARG names declared anywhere relevant

  // Global ARGs, then stages.
  size_t i = 0;
  for (; i < df.nodes.size() && df.nodes[i].cmd != "from"; ++i) {
    const Node& node = df.nodes[i];
    if (node.cmd != "arg") {
      return ErrorAt(df, &node, "no build stage in current context");
    }
    for (const std::string& word : node.args) {
      std::string key;
      std::optional<std::string> value;
      SplitArg(word, &key, &value);
      declared.insert(key);
      if (const std::string* v = FindBuildArg(opts, key)) {
        value = *v;
      } else if (value.has_value()) {
        absl::StatusOr<std::string> expanded = lex.ProcessWord(*value, global);
        if (!expanded.ok())
          return ErrorAt(df, &node, expanded.status().message());
        value = *expanded;
      }
      if (value.has_value()) SetEnv(&global, key, *value);
    }
  }
  plan.global_args = global;

  std::map<std::string, int> by_name;
  for (; i < df.nodes.size(); ++i) {
    const Node& node = df.nodes[i];
    if (node.cmd != "from") {
      plan.stages.back().instructions.push_back(&node);
      continue;
    }
    Stage stage;
    stage.index = static_cast<int>(plan.stages.size());
    stage.from = &node;
    if (node.args.size() == 3) {
      stage.name = absl::AsciiStrToLower(node.args[2]);
      if (!by_name.emplace(stage.name, stage.index).second) {
        return ErrorAt(
            df, &node,
            absl::StrCat("duplicate stage name \"", stage.name, "\""));
      }
    }
    if (node.args.empty()) {
      return ErrorAt(df, &node, "FROM requires either one or three arguments");
    }
    absl::StatusOr<std::string> base = lex.ProcessWord(node.args[0], global);
    if (!base.ok()) return ErrorAt(df, &node, base.status().message());
    if (base->empty()) {
      return ErrorAt(
          df, &node,
          absl::StrCat("base name (", node.args[0], ") should not be blank"));
    }
    std::string lower = absl::AsciiStrToLower(*base);
    auto it = by_name.find(lower);
    if (lower == "scratch") {
      stage.base.kind = BaseRef::kScratch;
    } else if (it != by_name.end() && it->second < stage.index) {
      stage.base.kind = BaseRef::kStage;
      stage.base.stage = it->second;
    } else {
      if (RepositoryHasUpperCase(*base)) {
        return ErrorAt(df, &node,
                       absl::StrCat("invalid reference format: repository "
                                    "name must be lowercase: ",
                                    *base));
      }
      stage.base.kind = BaseRef::kImage;
      stage.base.image = *base;
    }
    InstructionFlags flags = InstructionFlags::For("from");
    absl::Status st = flags.Parse(node.flags);
    if (!st.ok()) return ErrorAt(df, &node, st.message());
    stage.platform = opts.target_platform;
    if (flags.IsSet("platform")) {
      absl::StatusOr<std::string> p =
          lex.ProcessWord(flags.String("platform"), global);
      if (!p.ok()) return ErrorAt(df, &node, p.status().message());
      if (p->empty()) {
        return ErrorAt(df, &node, "FROM --platform expands to an empty string");
      }
      stage.platform = *p;
    }
    plan.stages.push_back(std::move(stage));
  }
  if (plan.stages.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(df.filename, ": no build stage in current context"));
  }

  auto resolve = [&](const std::string& ref) -> int {
    std::string lower = absl::AsciiStrToLower(ref);
    auto it = by_name.find(lower);
    if (it != by_name.end()) return it->second;
    int index;
    if (absl::SimpleAtoi(ref, &index) && index >= 0 &&
        index < static_cast<int>(plan.stages.size())) {
      return index;
    }
    return -1;
  };

  // Dependencies through COPY --from and RUN --mount from=. The reference is
  // expanded with what a stage can see before running: its ARGs (build args,
  // defaults, global defaults) and ENV values written in the Dockerfile.
  std::vector<std::set<std::string>> stage_args(plan.stages.size());
  for (Stage& stage : plan.stages) {
    std::vector<std::string> env;
    std::set<int> deps;
    for (const Node* node : stage.instructions) {
      const std::string& c = node->cmd;
      if (c == "arg") {
        for (const std::string& word : node->args) {
          std::string key;
          std::optional<std::string> value;
          SplitArg(word, &key, &value);
          stage_args[stage.index].insert(key);
          if (const std::string* v = FindBuildArg(opts, key)) {
            value = *v;
          } else if (value.has_value()) {
            absl::StatusOr<std::string> e = lex.ProcessWord(*value, env);
            value = e.ok() ? *e : *value;
          } else if (auto g = GetEnv(global, key)) {
            value = *g;
          }
          if (value.has_value()) SetEnv(&env, key, *value);
        }
      } else if (c == "env") {
        for (size_t k = 0; k + 1 < node->args.size(); k += 3) {
          absl::StatusOr<std::string> v =
              lex.ProcessWord(node->args[k + 1], env);
          if (v.ok()) SetEnv(&env, node->args[k], *v);
        }
      }
      std::vector<std::string> refs;
      InstructionFlags flags = InstructionFlags::For(c);
      if (!flags.Parse(node->flags).ok()) continue;  // reported at evaluation
      if (c == "copy" && flags.IsSet("from")) {
        refs.push_back(flags.String("from"));
      } else if (c == "run") {
        for (const std::string& m : flags.Strings("mount")) {
          std::string from = MountFrom(m);
          if (!from.empty()) refs.push_back(from);
        }
      }
      for (const std::string& raw : refs) {
        absl::StatusOr<std::string> ref = lex.ProcessWord(raw, env);
        if (!ref.ok()) return ErrorAt(df, node, ref.status().message());
        if (ref->empty()) {
          return ErrorAt(df, node,
                         absl::StrCat("--from expands to an empty "
                                      "string: ",
                                      raw));
        }
        int dep = resolve(*ref);
        if (dep == stage.index) {
          return ErrorAt(
              df, node,
              absl::StrCat("circular dependency detected on stage: ",
                           stage.name.empty() ? std::to_string(stage.index)
                                              : stage.name));
        }
        if (dep >= 0) {
          deps.insert(dep);
        } else if (std::find(stage.copy_from_images.begin(),
                             stage.copy_from_images.end(),
                             *ref) == stage.copy_from_images.end()) {
          stage.copy_from_images.push_back(*ref);
        }
      }
    }
    stage.depends_on.assign(deps.begin(), deps.end());
  }

  // Target.
  if (opts.target.empty()) {
    plan.target = static_cast<int>(plan.stages.size()) - 1;
  } else {
    auto it = by_name.find(absl::AsciiStrToLower(opts.target));
    if (it == by_name.end()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "target stage \"", opts.target, "\" could not be found"));
    }
    plan.target = it->second;
  }

  // Post-order walk from the target: dependencies first, cycles rejected.
  std::vector<int> state(plan.stages.size(), 0);  // 0 new, 1 active, 2 done
  std::function<absl::Status(int)> visit = [&](int s) -> absl::Status {
    if (state[s] == 2) return absl::OkStatus();
    const Stage& stage = plan.stages[s];
    if (state[s] == 1) {
      return ErrorAt(
          df, stage.from,
          absl::StrCat("circular dependency detected on stage: ",
                       stage.name.empty() ? std::to_string(s) : stage.name));
    }
    state[s] = 1;
    if (stage.base.kind == BaseRef::kStage) {
      absl::Status st = visit(stage.base.stage);
      if (!st.ok()) return st;
    }
    for (int dep : stage.depends_on) {
      absl::Status st = visit(dep);
      if (!st.ok()) return st;
    }
    state[s] = 2;
    plan.order.push_back(s);
    return absl::OkStatus();
  };
  absl::Status st = visit(plan.target);
  if (!st.ok()) return st;

  for (int s : plan.order) {
    declared.insert(stage_args[s].begin(), stage_args[s].end());
  }
  std::set<std::string> reported;
  for (const auto& kv : opts.build_args) {
    if (declared.count(kv.first) || IsProxyArg(kv.first)) continue;
    if (absl::StartsWith(kv.first, "BUILDKIT_")) continue;
    if (reported.insert(kv.first).second) {
      plan.unused_build_args.push_back(kv.first);
    }
  }
  return plan;
}

}  // namespace longshore::dockerfile
