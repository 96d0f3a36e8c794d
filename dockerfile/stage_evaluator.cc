#include "dockerfile/stage_evaluator.h"

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/status_macros.h"
#include "dockerfile/instruction_flags.h"
#include "dockerfile/text_util.h"

namespace longshore::dockerfile {
namespace {

constexpr char kDefaultPath[] =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

// Lexical clean of an absolute path: collapses "//", ".", "..".
std::string CleanAbs(absl::string_view p) {
  std::vector<std::string> parts;
  for (absl::string_view seg : absl::StrSplit(p, '/')) {
    if (seg.empty() || seg == ".") continue;
    if (seg == "..") {
      if (!parts.empty()) parts.pop_back();
      continue;
    }
    parts.emplace_back(seg);
  }
  return "/" + absl::StrJoin(parts, "/");
}

std::string QuoteList(const std::vector<std::string>& v) {
  std::vector<std::string> q;
  for (const std::string& s : v) q.push_back(GoQuote(s));
  return "[" + absl::StrJoin(q, " ") + "]";
}

// "80", "80/udp", "8000-8002/tcp" -> "80/tcp", ...
absl::Status ParsePorts(const std::string& spec, std::set<std::string>* out) {
  std::string port = spec, proto = "tcp";
  size_t slash = spec.find('/');
  if (slash != std::string::npos) {
    port = spec.substr(0, slash);
    proto = absl::AsciiStrToLower(spec.substr(slash + 1));
    if (proto.empty()) proto = "tcp";
  }
  if (proto != "tcp" && proto != "udp" && proto != "sctp") {
    return absl::InvalidArgumentError(absl::StrCat("invalid proto: ", proto));
  }
  // An "ip:hostport:port" form is accepted by Docker's parser; only the
  // container port matters to an image.
  size_t colon = port.rfind(':');
  if (colon != std::string::npos) port = port.substr(colon + 1);
  int lo, hi;
  size_t dash = port.find('-');
  if (dash == std::string::npos) {
    if (!absl::SimpleAtoi(port, &lo)) {
      return absl::InvalidArgumentError(
          absl::StrCat("invalid containerPort: ", port));
    }
    hi = lo;
  } else if (!absl::SimpleAtoi(port.substr(0, dash), &lo) ||
             !absl::SimpleAtoi(port.substr(dash + 1), &hi) || hi < lo) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid range format for --expose: ", port));
  }
  if (lo < 0 || hi > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid containerPort: ", port));
  }
  if (hi - lo > 65535) hi = lo + 65535;
  for (int p = lo; p <= hi; ++p) out->insert(absl::StrCat(p, "/", proto));
  return absl::OkStatus();
}

// BuildKit's --mount syntax: comma-separated key=value fields (CSV quoting
// with double quotes is honoured), bare keys for booleans.
absl::StatusOr<MountSpec> ParseMount(absl::string_view spec) {
  std::vector<std::string> fields;
  std::string cur;
  bool quoted = false;
  for (char c : spec) {
    if (c == '"') {
      quoted = !quoted;
      continue;
    }
    if (c == ',' && !quoted) {
      fields.push_back(cur);
      cur.clear();
      continue;
    }
    cur.push_back(c);
  }
  fields.push_back(cur);
  MountSpec m;
  m.type = "bind";
  // The type decides defaults, so find it first.
  for (const std::string& f : fields) {
    if (absl::StartsWith(absl::AsciiStrToLower(f), "type=")) {
      m.type = absl::AsciiStrToLower(f.substr(5));
    }
  }
  if (m.type != "bind" && m.type != "cache" && m.type != "tmpfs" &&
      m.type != "secret" && m.type != "ssh") {
    return absl::InvalidArgumentError(
        absl::StrCat("unsupported mount type \"", m.type, "\""));
  }
  m.readonly = m.type == "bind" || m.type == "secret" || m.type == "ssh";
  if (m.type == "cache") m.sharing = "shared";
  for (const std::string& raw : fields) {
    std::string f(absl::StripAsciiWhitespace(raw));
    if (f.empty()) continue;
    size_t eq = f.find('=');
    std::string key = absl::AsciiStrToLower(f.substr(0, eq));
    std::string value = eq == std::string::npos ? "" : f.substr(eq + 1);
    const bool bare = eq == std::string::npos;
    auto as_bool = [&](bool* out) -> absl::Status {
      if (bare) {
        *out = true;
        return absl::OkStatus();
      }
      std::string v = absl::AsciiStrToLower(value);
      if (v == "true" || v == "1") {
        *out = true;
      } else if (v == "false" || v == "0") {
        *out = false;
      } else {
        return absl::InvalidArgumentError(
            absl::StrCat("invalid value for ", key, ": ", value));
      }
      return absl::OkStatus();
    };
    if (key == "type") continue;
    if (key == "target" || key == "dst" || key == "destination") {
      m.target = value;
    } else if (key == "source" || key == "src") {
      m.source = value;
    } else if (key == "from") {
      m.from = value;
    } else if (key == "id") {
      m.id = value;
    } else if (key == "sharing") {
      if (value != "shared" && value != "private" && value != "locked") {
        return absl::InvalidArgumentError(
            absl::StrCat("unsupported sharing value \"", value, "\""));
      }
      m.sharing = value;
    } else if (key == "mode") {
      m.mode = value;
    } else if (key == "readonly" || key == "ro") {
      bool v;
      absl::Status st = as_bool(&v);
      if (!st.ok()) return st;
      m.readonly = v;
    } else if (key == "readwrite" || key == "rw") {
      bool v;
      absl::Status st = as_bool(&v);
      if (!st.ok()) return st;
      m.readonly = !v;
    } else if (key == "uid" || key == "gid" || key == "size" ||
               key == "required" || key == "env") {
      m.options[key] = bare ? "true" : value;
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("unexpected key '", key, "' in '", f, "'"));
    }
  }
  if (m.type == "secret") {
    if (m.id.empty() && !m.target.empty()) {
      m.id = m.target.substr(m.target.rfind('/') + 1);
    }
    if (m.id.empty()) {
      return absl::InvalidArgumentError(
          "secret mount requires an id or target");
    }
    if (m.target.empty() && m.options.count("env") == 0) {
      m.target = "/run/secrets/" + m.id;
    }
  } else if (m.type == "ssh") {
    if (m.id.empty()) m.id = "default";
    if (m.target.empty()) m.target = "/run/buildkit/ssh_agent.0";
  } else if (m.target.empty()) {
    return absl::InvalidArgumentError("mount destination (target) is required");
  }
  if (m.type == "cache" && m.id.empty()) m.id = m.target;
  return m;
}

}  // namespace

std::string ResolvePath(absl::string_view cwd, absl::string_view path) {
  const bool trailing =
      absl::EndsWith(path, "/") || path == "." || absl::EndsWith(path, "/.");
  std::string joined = absl::StartsWith(path, "/")
                           ? std::string(path)
                           : absl::StrCat(cwd.empty() ? "/" : cwd, "/", path);
  std::string clean = CleanAbs(joined);
  if (trailing && clean != "/") clean += "/";
  return clean;
}

absl::StatusOr<int64_t> ParseGoDurationNs(absl::string_view text) {
  absl::string_view s = text;
  bool neg = false;
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) {
    neg = s[0] == '-';
    s.remove_prefix(1);
  }
  if (s == "0") return 0;
  if (s.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("time: invalid duration \"", text, "\""));
  }
  long double total = 0;
  while (!s.empty()) {
    size_t i = 0;
    while (i < s.size() && (absl::ascii_isdigit(s[i]) || s[i] == '.')) ++i;
    if (i == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("time: invalid duration \"", text, "\""));
    }
    double number;
    if (!absl::SimpleAtod(s.substr(0, i), &number)) {
      return absl::InvalidArgumentError(
          absl::StrCat("time: invalid duration \"", text, "\""));
    }
    s.remove_prefix(i);
    size_t j = 0;
    while (j < s.size() && !absl::ascii_isdigit(s[j]) && s[j] != '.') ++j;
    absl::string_view unit = s.substr(0, j);
    s.remove_prefix(j);
    long double scale;
    if (unit == "ns") {
      scale = 1;
    } else if (unit == "us" || unit == "\xc2\xb5s" || unit == "\xce\xbcs") {
      scale = 1e3;
    } else if (unit == "ms") {
      scale = 1e6;
    } else if (unit == "s") {
      scale = 1e9;
    } else if (unit == "m") {
      scale = 60e9;
    } else if (unit == "h") {
      scale = 3600e9;
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat(unit.empty() ? "time: missing unit in duration \""
                                    : "time: unknown unit in duration \"",
                       text, "\""));
    }
    total += number * scale;
    if (total > 9.2e18) {
      return absl::InvalidArgumentError(
          absl::StrCat("time: invalid duration \"", text, "\""));
    }
  }
  auto ns = static_cast<int64_t>(total);
  return neg ? -ns : ns;
}

StageEvaluator::StageEvaluator(const BuildPlan& plan, int stage_index,
                               ImageConfig base_config)
    : plan_(plan),
      stage_index_(stage_index),
      config_(base_config),
      base_config_(std::move(base_config)),
      lex_(plan.escape) {
  // Triggers run once, in the image that builds on the base; they are not
  // inherited further.
  config_.on_build.clear();
  if (!GetEnv(config_.env, "PATH").has_value()) {
    SetEnv(&config_.env, "PATH", kDefaultPath);
  }
}

absl::Status StageEvaluator::ErrorAt(const Node& node,
                                     absl::string_view what) const {
  return absl::InvalidArgumentError(
      absl::StrCat(plan_.filename, ":", node.start_line, ": ", what));
}

std::vector<std::string> StageEvaluator::ExpansionEnv() const {
  std::vector<std::string> env;
  for (const auto& kv : args_) {
    if (args_unset_.count(kv.first) == 0)
      env.push_back(kv.first + "=" + kv.second);
  }
  for (const std::string& kv : config_.env) {
    size_t eq = kv.find('=');
    SetEnv(&env, kv.substr(0, eq),
           eq == std::string::npos ? "" : kv.substr(eq + 1));
  }
  return env;
}

std::vector<std::string> StageEvaluator::RunEnv() const {
  std::vector<std::string> env = ExpansionEnv();
  for (const auto& kv : plan_.options.build_args) {
    if (IsProxyArg(kv.first) && !GetEnv(env, kv.first).has_value()) {
      env.push_back(kv.first + "=" + kv.second);
    }
  }
  return env;
}

std::vector<std::string> StageEvaluator::ArgsInScope() const {
  std::vector<std::string> out;
  std::vector<std::string> env = ExpansionEnv();
  for (const auto& kv : args_) {
    std::optional<std::string> v = GetEnv(env, kv.first);
    out.push_back(kv.first + "=" + v.value_or(""));
  }
  return out;
}

std::string StageEvaluator::ArgPrefix() const {
  std::vector<std::string> args = ArgsInScope();
  if (args.empty()) return "";
  return absl::StrCat("|", args.size(), " ", absl::StrJoin(args, " "), " ");
}

int StageEvaluator::ResolveStage(absl::string_view name) const {
  std::string lower = absl::AsciiStrToLower(name);
  for (const Stage& s : plan_.stages) {
    if (!s.name.empty() && s.name == lower) return s.index;
  }
  int index;
  if (absl::SimpleAtoi(name, &index) && index >= 0 &&
      index < static_cast<int>(plan_.stages.size())) {
    return index;
  }
  return -1;
}

absl::StatusOr<std::string> StageEvaluator::Expand(const Node& node,
                                                   absl::string_view word) {
  absl::StatusOr<std::string> r = lex_.ProcessWord(word, ExpansionEnv());
  if (!r.ok()) return ErrorAt(node, r.status().message());
  return r;
}

absl::StatusOr<std::vector<Node>> StageEvaluator::BaseTriggers() const {
  std::vector<Node> out;
  for (const std::string& trigger : base_config_.on_build) {
    absl::StatusOr<ParsedDockerfile> df =
        Parse(trigger, absl::StrCat(plan_.filename, " (ONBUILD trigger)"));
    if (!df.ok()) return df.status();
    for (Node& node : df->nodes) {
      if (node.cmd == "onbuild" || node.cmd == "from" ||
          node.cmd == "maintainer") {
        return absl::InvalidArgumentError(
            absl::StrCat(absl::AsciiStrToUpper(node.cmd),
                         " isn't allowed as an ONBUILD trigger"));
      }
      // Triggers carry the location of the FROM that pulled them in.
      const Stage& stage = plan_.stages[stage_index_];
      if (stage.from != nullptr) {
        node.start_line = stage.from->start_line;
        node.end_line = stage.from->end_line;
      }
      out.push_back(std::move(node));
    }
  }
  return out;
}

absl::StatusOr<ExpandedStep> StageEvaluator::Next(const Node& node) {
  ExpandedStep step;
  step.line = node.start_line;
  step.instruction = node.original;
  step.kind = ExpandedStep::kConfigOnly;
  step.empty_layer = true;
  const std::string& c = node.cmd;

  InstructionFlags flags = InstructionFlags::For(c);
  absl::Status st = flags.Parse(node.flags);
  if (!st.ok()) return ErrorAt(node, st.message());

  if (c == "run") return Run(node, std::move(step));
  if (c == "copy" || c == "add") return Copy(node, std::move(step));
  if (c == "arg") return Arg(node, std::move(step));
  if (c == "healthcheck") return Healthcheck(node, std::move(step));

  if (c == "env") {
    if (node.args.empty() || node.args.size() % 3 != 0) {
      return ErrorAt(node, "ENV requires at least one argument");
    }
    // Every value expands against the environment before this instruction.
    std::vector<std::pair<std::string, std::string>> pairs;
    for (size_t i = 0; i < node.args.size(); i += 3) {
      ASSIGN_OR_RETURN(std::string key, Expand(node, node.args[i]));
      ASSIGN_OR_RETURN(std::string value, Expand(node, node.args[i + 1]));
      if (key.empty()) return ErrorAt(node, "ENV names can not be blank");
      pairs.emplace_back(key, value);
    }
    std::vector<std::string> parts;
    for (const auto& kv : pairs) {
      SetEnv(&config_.env, kv.first, kv.second);
      parts.push_back(kv.first + "=" + kv.second);
    }
    step.created_by = "ENV " + absl::StrJoin(parts, " ");
  } else if (c == "label") {
    std::vector<std::string> parts;
    for (size_t i = 0; i + 1 < node.args.size(); i += 3) {
      ASSIGN_OR_RETURN(std::string key, Expand(node, node.args[i]));
      ASSIGN_OR_RETURN(std::string value, Expand(node, node.args[i + 1]));
      if (key.empty()) return ErrorAt(node, "LABEL names can not be blank");
      config_.labels[key] = value;
      parts.push_back(key + "=" + value);
    }
    step.created_by = "LABEL " + absl::StrJoin(parts, " ");
  } else if (c == "workdir") {
    if (node.args.size() != 1) {
      return ErrorAt(node, "WORKDIR requires exactly one argument");
    }
    ASSIGN_OR_RETURN(std::string dir, Expand(node, node.args[0]));
    std::string resolved = ResolvePath(config_.working_dir, dir);
    if (resolved.size() > 1 && resolved.back() == '/') resolved.pop_back();
    config_.working_dir = resolved;
    step.kind = ExpandedStep::kWorkdir;
    step.workdir = resolved;
    step.empty_layer = false;
    step.created_by = "WORKDIR " + resolved;
  } else if (c == "user") {
    if (node.args.size() != 1) {
      return ErrorAt(node, "USER requires exactly one argument");
    }
    ASSIGN_OR_RETURN(config_.user, Expand(node, node.args[0]));
    step.created_by = "USER " + config_.user;
  } else if (c == "expose") {
    std::vector<std::string> ports;
    for (const std::string& a : node.args) {
      absl::StatusOr<std::vector<std::string>> words =
          lex_.ProcessWords(a, ExpansionEnv());
      if (!words.ok()) return ErrorAt(node, words.status().message());
      for (const std::string& w : *words) {
        std::set<std::string> parsed;
        st = ParsePorts(w, &parsed);
        if (!st.ok()) return ErrorAt(node, st.message());
        for (const std::string& p : parsed) {
          config_.exposed_ports.insert(p);
          ports.push_back(p);
        }
      }
    }
    step.created_by = "EXPOSE " + absl::StrJoin(ports, " ");
  } else if (c == "volume") {
    std::vector<std::string> vols;
    for (const std::string& a : node.args) {
      ASSIGN_OR_RETURN(std::string v, Expand(node, a));
      if (text::TrimSpace(v).empty()) {
        return ErrorAt(node, "VOLUME specified can not be an empty string");
      }
      config_.volumes.insert(v);
      vols.push_back(v);
    }
    step.created_by = "VOLUME [" + absl::StrJoin(vols, " ") + "]";
  } else if (c == "stopsignal") {
    if (node.args.size() != 1) {
      return ErrorAt(node, "STOPSIGNAL requires exactly one argument");
    }
    ASSIGN_OR_RETURN(std::string sig, Expand(node, node.args[0]));
    int num;
    const bool numeric = absl::SimpleAtoi(sig, &num);
    std::string upper = absl::AsciiStrToUpper(sig);
    if (sig.empty() || (numeric && num <= 0) ||
        (!numeric && !std::all_of(upper.begin(), upper.end(), [](char ch) {
          return (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                 ch == '+' || ch == '-';
        }))) {
      return ErrorAt(node, absl::StrCat("Invalid signal: ", sig));
    }
    config_.stop_signal = sig;
    step.created_by = "STOPSIGNAL " + sig;
  } else if (c == "cmd" || c == "entrypoint") {
    std::vector<std::string> argv;
    if (node.json) {
      argv = node.args;
    } else if (!node.args.empty()) {
      argv = config_.shell.empty() ? std::vector<std::string>{"/bin/sh", "-c"}
                                   : config_.shell;
      argv.push_back(node.args[0]);
    }
    if (c == "cmd") {
      config_.cmd = argv;
      config_.cmd_set = true;
      cmd_set_in_stage_ = true;
      step.created_by = "CMD " + QuoteList(argv);
    } else {
      config_.entrypoint = argv;
      config_.entrypoint_set = true;
      // An ENTRYPOINT resets a CMD inherited from the base image.
      if (!cmd_set_in_stage_) {
        config_.cmd.clear();
        config_.cmd_set = false;
      }
      step.created_by = "ENTRYPOINT " + QuoteList(argv);
    }
  } else if (c == "shell") {
    if (!node.json || node.args.empty()) {
      return ErrorAt(node, "SHELL requires the arguments to be in JSON form");
    }
    config_.shell = node.args;
    step.created_by = "SHELL " + QuoteList(node.args);
  } else if (c == "onbuild") {
    if (node.children.empty()) {
      return ErrorAt(node, "ONBUILD requires at least one argument");
    }
    // The trigger is the text after ONBUILD, as written.
    std::string trigger(text::TrimLeftSpace(node.original));
    trigger =
        trigger.substr(std::min(trigger.size(), node.cmd_as_written.size()));
    trigger = std::string(text::TrimSpace(trigger));
    config_.on_build.push_back(trigger);
    step.created_by = "ONBUILD " + trigger;
  } else if (c == "maintainer") {
    if (node.args.size() != 1) {
      return ErrorAt(node, "MAINTAINER requires exactly one argument");
    }
    config_.maintainer = node.args[0];
    step.created_by = "MAINTAINER " + node.args[0];
  } else if (c == "from") {
    return ErrorAt(node, "FROM is not an instruction of a stage's body");
  } else {
    return ErrorAt(node,
                   absl::StrCat("unknown instruction: ", node.cmd_as_written));
  }
  step.cache_text = step.created_by;
  return step;
}

absl::StatusOr<ExpandedStep> StageEvaluator::Arg(const Node& node,
                                                 ExpandedStep step) {
  if (node.args.empty()) {
    return ErrorAt(node, "ARG requires at least one argument");
  }
  std::vector<std::string> commit;
  for (const std::string& word : node.args) {
    size_t eq = word.find('=');
    std::string key = word.substr(0, eq);
    std::optional<std::string> value;
    if (key.empty()) return ErrorAt(node, "ARG names can not be blank");
    const std::string* build_arg = nullptr;
    for (const auto& kv : plan_.options.build_args) {
      if (kv.first == key) build_arg = &kv.second;
    }
    if (build_arg != nullptr) {
      value = *build_arg;
      used_build_args_.insert(key);
    } else if (eq != std::string::npos) {
      ASSIGN_OR_RETURN(value, Expand(node, word.substr(eq + 1)));
    } else if (std::optional<std::string> g = GetEnv(plan_.global_args, key)) {
      // An ARG without a value takes the global ARG's value.
      value = *g;
    }
    auto it = std::find_if(args_.begin(), args_.end(),
                           [&](const auto& kv) { return kv.first == key; });
    if (it == args_.end()) {
      args_.emplace_back(key, value.value_or(""));
    } else {
      it->second = value.value_or("");
    }
    if (value.has_value()) {
      args_unset_.erase(key);
      commit.push_back(key + "=" + *value);
    } else {
      args_unset_.insert(key);
      commit.push_back(key);
    }
  }
  step.created_by = "ARG " + absl::StrJoin(commit, " ");
  step.cache_text = step.created_by;
  return step;
}

absl::StatusOr<ExpandedStep> StageEvaluator::Healthcheck(const Node& node,
                                                         ExpandedStep step) {
  if (node.args.empty()) {
    return ErrorAt(node, "HEALTHCHECK requires at least one argument");
  }
  InstructionFlags flags = InstructionFlags::For("healthcheck");
  absl::Status st = flags.Parse(node.flags);
  if (!st.ok()) return ErrorAt(node, st.message());
  std::string typ = absl::AsciiStrToUpper(node.args[0]);
  ::longshore::dockerfile::Healthcheck hc;
  if (typ == "NONE") {
    if (node.args.size() != 1) {
      return ErrorAt(node, "HEALTHCHECK NONE takes no arguments");
    }
    hc.test = {"NONE"};
  } else if (typ == "CMD") {
    if (node.args.size() < 2) {
      return ErrorAt(node, "Missing command after HEALTHCHECK CMD");
    }
    if (node.json) {
      hc.test = {"CMD"};
      hc.test.insert(hc.test.end(), node.args.begin() + 1, node.args.end());
    } else {
      hc.test = {"CMD-SHELL", node.args[1]};
    }
    struct {
      const char* flag;
      int64_t* out;
    } durations[] = {{"interval", &hc.interval_ns},
                     {"timeout", &hc.timeout_ns},
                     {"start-period", &hc.start_period_ns},
                     {"start-interval", &hc.start_interval_ns}};
    for (auto& d : durations) {
      if (!flags.IsSet(d.flag)) continue;
      absl::StatusOr<int64_t> ns = ParseGoDurationNs(flags.String(d.flag));
      if (!ns.ok()) return ErrorAt(node, ns.status().message());
      if (*ns != 0 && *ns < 1000000) {
        return ErrorAt(node, absl::StrCat("Interval \"--", d.flag,
                                          "\" cannot be less than 1ms"));
      }
      if (*ns < 0) {
        return ErrorAt(node, absl::StrCat("Interval \"--", d.flag,
                                          "\" cannot be negative"));
      }
      *d.out = *ns;
    }
    if (flags.IsSet("retries")) {
      int retries;
      if (!absl::SimpleAtoi(flags.String("retries"), &retries)) {
        return ErrorAt(node, absl::StrCat("invalid --retries value: ",
                                          flags.String("retries")));
      }
      if (retries < 0) {
        return ErrorAt(
            node, absl::StrCat("--retries cannot be negative (", retries, ")"));
      }
      hc.retries = retries;
    }
  } else {
    return ErrorAt(node, absl::StrCat("Unknown type ", GoQuote(typ),
                                      " in HEALTHCHECK (try CMD)"));
  }
  config_.healthcheck = hc;
  step.created_by = absl::StrCat(
      "HEALTHCHECK ", QuoteList(hc.test), " interval=", hc.interval_ns,
      " timeout=", hc.timeout_ns, " start_period=", hc.start_period_ns,
      " start_interval=", hc.start_interval_ns, " retries=", hc.retries);
  step.cache_text = step.created_by;
  return step;
}

absl::StatusOr<ExpandedStep> StageEvaluator::Run(const Node& node,
                                                 ExpandedStep step) {
  InstructionFlags flags = InstructionFlags::For("run");
  absl::Status st = flags.Parse(node.flags);
  if (!st.ok()) return ErrorAt(node, st.message());
  RunStep& run = step.run;
  if (node.args.empty()) {
    return ErrorAt(node, "RUN requires at least one argument");
  }

  for (const std::string& raw : flags.Strings("mount")) {
    ASSIGN_OR_RETURN(std::string spec, Expand(node, raw));
    absl::StatusOr<MountSpec> m = ParseMount(spec);
    if (!m.ok()) return ErrorAt(node, m.status().message());
    if (!m->from.empty()) m->from_stage = ResolveStage(m->from);
    run.mounts.push_back(std::move(*m));
  }
  if (flags.IsSet("network")) {
    ASSIGN_OR_RETURN(run.network, Expand(node, flags.String("network")));
    if (run.network != "default" && run.network != "none" &&
        run.network != "host") {
      return ErrorAt(
          node, absl::StrCat("unsupported network mode \"", run.network, "\""));
    }
  }
  if (flags.IsSet("security")) {
    ASSIGN_OR_RETURN(run.security, Expand(node, flags.String("security")));
    if (run.security != "sandbox" && run.security != "insecure") {
      return ErrorAt(node, absl::StrCat("unsupported security mode \"",
                                        run.security, "\""));
    }
  }

  const std::vector<std::string> shell =
      config_.shell.empty() ? std::vector<std::string>{"/bin/sh", "-c"}
                            : config_.shell;
  std::vector<std::string> args = node.args;
  std::string history_suffix;
  if (!node.heredocs.empty()) {
    if (node.json || args.size() != 1) {
      return ErrorAt(node, "parsing produced an invalid run command");
    }
    absl::StatusOr<std::optional<Heredoc>> whole = ParseHeredocWord(args[0]);
    const Heredoc& first = node.heredocs[0];
    if (whole.ok() && whole->has_value()) {
      // The command is the heredoc itself.
      std::string body = HeredocBody(first);
      // The shebang is looked for after `<<-` tab chomping.
      if (absl::StartsWith(body, "#!")) {
        Heredoc file = first;
        file.content = body;
        file.chomp_tabs = false;
        run.heredoc_files.push_back(file);
        args = {"/dev/pipes/" + first.name};
        run.argv = args;
      } else {
        args = {body};
      }
    } else {
      // The shell handles the heredocs: hand it the full text.
      std::string full = args[0];
      for (const Heredoc& h : node.heredocs) {
        full += "\n" + h.content + h.name;
      }
      args = {full};
    }
  }
  if (run.argv.empty()) {
    if (node.json) {
      run.argv = args;
    } else {
      run.argv = shell;
      run.argv.push_back(args[0]);
    }
  }
  run.env = RunEnv();
  run.user = config_.user;
  run.workdir = config_.working_dir.empty() ? "/" : config_.working_dir;

  step.kind = ExpandedStep::kRun;
  step.empty_layer = false;
  step.created_by = "RUN " + ArgPrefix() + absl::StrJoin(run.argv, " ");
  // The cache text covers everything the process sees, except proxy values.
  std::vector<std::string> cache_env;
  for (const std::string& kv : run.env) {
    if (!IsProxyArg(kv.substr(0, kv.find('=')))) cache_env.push_back(kv);
  }
  std::vector<std::string> mounts;
  for (const MountSpec& m : run.mounts) {
    std::vector<std::string> opts;
    for (const auto& kv : m.options) opts.push_back(kv.first + "=" + kv.second);
    mounts.push_back(absl::StrCat(
        "type=", m.type, ",target=", m.target, ",source=", m.source, ",from=",
        m.from, ",id=", m.id, ",sharing=", m.sharing, ",mode=", m.mode,
        ",ro=", m.readonly ? "1" : "0", ",", absl::StrJoin(opts, ",")));
  }
  std::vector<std::string> files;
  for (const Heredoc& h : run.heredoc_files) {
    files.push_back(h.name + "\n" + h.content);
  }
  step.cache_text = absl::StrCat(
      "RUN\nargv=", QuoteList(run.argv), "\nenv=", QuoteList(cache_env),
      "\nuser=", run.user, "\nworkdir=", run.workdir, "\nnetwork=", run.network,
      "\nsecurity=", run.security, "\nmounts=", QuoteList(mounts),
      "\nfiles=", QuoteList(files));
  return step;
}

absl::StatusOr<ExpandedStep> StageEvaluator::Copy(const Node& node,
                                                  ExpandedStep step) {
  const bool add = node.cmd == "add";
  const char* name = add ? "ADD" : "COPY";
  InstructionFlags flags = InstructionFlags::For(node.cmd);
  absl::Status st = flags.Parse(node.flags);
  if (!st.ok()) return ErrorAt(node, st.message());
  if (node.args.size() < 2) {
    return ErrorAt(node, absl::StrCat(name,
                                      " requires at least two arguments, but "
                                      "only one was provided. Destination "
                                      "could not be determined."));
  }
  CopyStep& copy = step.copy;
  copy.add = add;

  // Heredoc bodies expand like a double-quoted word: quotes stay literal.
  ShellLex body_lex(plan_.escape);
  body_lex.set_skip_process_quotes(true);

  const std::vector<std::string> env = ExpansionEnv();
  size_t heredoc_index = 0;
  for (size_t i = 0; i + 1 < node.args.size(); ++i) {
    const std::string& src = node.args[i];
    absl::StatusOr<std::optional<Heredoc>> doc =
        node.json ? absl::StatusOr<std::optional<Heredoc>>(std::nullopt)
                  : ParseHeredocWord(src);
    if (doc.ok() && doc->has_value() && heredoc_index < node.heredocs.size()) {
      Heredoc file = node.heredocs[heredoc_index++];
      file.content = HeredocBody(file);
      file.chomp_tabs = false;
      if (file.expand) {
        absl::StatusOr<std::string> e = body_lex.ProcessWord(file.content, env);
        if (!e.ok()) return ErrorAt(node, e.status().message());
        file.content = *e;
      }
      copy.inline_files.push_back(std::move(file));
      continue;
    }
    ASSIGN_OR_RETURN(std::string expanded, Expand(node, src));
    copy.sources.push_back(expanded);
  }
  ASSIGN_OR_RETURN(std::string dest, Expand(node, node.args.back()));
  // More than one source (or a wildcard) needs a directory destination.
  const bool many = copy.sources.size() + copy.inline_files.size() > 1;
  if (many && !absl::EndsWith(dest, "/") && dest != "." &&
      !absl::EndsWith(dest, "/.")) {
    return ErrorAt(node, absl::StrCat("When using ", name,
                                      " with more than one source file, the "
                                      "destination must be a directory and "
                                      "end with a /"));
  }
  copy.dest = ResolvePath(config_.working_dir, dest);

  if (flags.IsSet("from")) {
    ASSIGN_OR_RETURN(copy.from, Expand(node, flags.String("from")));
    copy.from_stage = ResolveStage(copy.from);
    if (copy.from_stage == stage_index_) {
      return ErrorAt(node, absl::StrCat("circular dependency detected on "
                                        "stage: ",
                                        copy.from));
    }
  }
  if (flags.IsSet("chown")) {
    ASSIGN_OR_RETURN(copy.chown, Expand(node, flags.String("chown")));
  }
  if (flags.IsSet("chmod")) {
    ASSIGN_OR_RETURN(copy.chmod, Expand(node, flags.String("chmod")));
    // Octal modes are checked here; symbolic modes are left to the worker.
    const std::string& m = copy.chmod;
    const bool octal =
        !m.empty() && std::all_of(m.begin(), m.end(),
                                  [](char c) { return c >= '0' && c <= '7'; });
    if (!octal && std::all_of(m.begin(), m.end(), absl::ascii_isdigit)) {
      return ErrorAt(node, absl::StrCat("invalid chmod parameter: ", m));
    }
  }
  copy.link = flags.Bool("link");
  copy.parents = flags.Bool("parents");
  copy.keep_git_dir = flags.Bool("keep-git-dir");
  copy.unpack = flags.Bool("unpack", true);
  if (flags.IsSet("checksum")) {
    ASSIGN_OR_RETURN(copy.checksum, Expand(node, flags.String("checksum")));
  }
  for (const std::string& ex : flags.Strings("exclude")) {
    ASSIGN_OR_RETURN(std::string e, Expand(node, ex));
    copy.excludes.push_back(e);
  }

  step.kind = ExpandedStep::kCopy;
  step.empty_layer = false;
  std::vector<std::string> shown = copy.sources;
  for (const Heredoc& h : copy.inline_files) shown.push_back("<<" + h.name);
  step.created_by = absl::StrCat(name, " ", absl::StrJoin(shown, " "), " ",
                                 copy.dest, " # buildkit");
  std::vector<std::string> files;
  for (const Heredoc& h : copy.inline_files) {
    files.push_back(h.name + "\n" + h.content);
  }
  step.cache_text = absl::StrCat(
      name, "\nsources=", QuoteList(copy.sources), "\ndest=", copy.dest,
      "\nfrom=", copy.from, "\nchown=", copy.chown, "\nchmod=", copy.chmod,
      "\nlink=", copy.link, "\nparents=", copy.parents,
      "\nexcludes=", QuoteList(copy.excludes),
      "\nkeep_git_dir=", copy.keep_git_dir, "\nchecksum=", copy.checksum,
      "\nunpack=", copy.unpack, "\nfiles=", QuoteList(files));
  return step;
}

}  // namespace longshore::dockerfile
