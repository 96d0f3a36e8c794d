#include "client/build_flags.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "sandbox/options.h"

namespace longshore::client {

const char kBuildUsage[] =
    R"(Usage: longshore build [OPTIONS] CONTEXT

Options:
  -t, --tag NAME[:TAG]        Name and optionally a tag (repeatable)
  -f, --file PATH             Name of the Dockerfile (default: CONTEXT/Dockerfile)
      --build-arg K=V         Set a build-time variable (repeatable)
      --label K=V             Set metadata on the image (repeatable)
      --target STAGE          Build the named stage
      --platform OS/ARCH      Build for this platform, on a worker of it;
                              several (e.g. --platform linux/amd64,linux/arm64
                              --push) build once on a worker of each and push
                              one index under the tags
      --timeout DURATION      Fail the build if it runs longer (e.g. 30m, 2h;
                              default: the farm's --build-timeout)
      --worker-label K=V      Run only on a worker registered with this label
                              (repeatable; e.g. --worker-label pool=gpu)
      --no-cache              Do not use the layer cache
      --progress MODE         auto, tty, plain or json (default auto)
  -o, --output SPEC           Where the result goes (repeatable):
                                type=oci,dest=PATH[,tar=false]   OCI layout
                                type=docker,dest=FILE            docker load tar
                                type=registry                    push the tags
                                type=local,dest=DIR   final filesystem as files
                                                      owned by you
                                type=tar,dest=FILE    the same as one tar
                              dest=- writes a tar to stdout; "-o DIR" is
                              type=local, "-o -" is type=tar,dest=-
                              (e.g. -o type=local,dest=out, -o - | tar t)
      --push                  Shorthand for --output=type=registry
      --scheduler HOST:PORT   Submit to a farm ($LONGSHORE_SCHEDULER); without it the
                              build runs in-process on this machine
  -q, --quiet                 Print only the image digest
      --iidfile FILE          Write the image digest to FILE
      --secret id=ID,src=FILE Secret for RUN --mount=type=secret (also env=VAR)
      --cache-from REF        Read layers from a registry cache repository
      --cache-to REF          Write layers to a registry cache repository
                              (REF or type=registry,ref=REF; repeatable)
      --pull                  Always resolve base images at their registry
                              again (e.g. --pull after a base tag moved)
      --network MODE          Network of RUN steps: default, none or host
                              (e.g. --network none; host needs a worker
                              started with --allow-host-network)
      --allow ENTITLEMENT     Grant network.host or security.insecure, if the
                              worker's policy permits it (repeatable; e.g.
                              --allow network.host for RUN --network=host)
      --metadata-file FILE    Write the result as JSON: containerimage.digest,
                              containerimage.config.digest, image.name,
                              longshore.build.id (e.g. --metadata-file md.json)
      --add-host NAME:IP      An /etc/hosts entry in RUN steps (repeatable;
                              e.g. --add-host db.internal:10.0.0.5)
      --ulimit NAME=SOFT[:HARD]
                              An rlimit of RUN steps, bounded by the worker's
                              (repeatable; e.g. --ulimit nofile=1024:2048)
      --shm-size SIZE         Size of /dev/shm in RUN steps (default 64m;
                              e.g. --shm-size 256m)
      --detach                Print the build id once submitted and exit; the
                              build goes on (follow it with longshore logs
                              --follow ID)

CONTEXT is a directory, or - for a tar read from stdin (its Dockerfile
inside; a plain Dockerfile on stdin builds with an empty context):
  longshore build -t app:1 - < context.tar
  longshore build -f - . < Dockerfile.ci    (-f -: the Dockerfile from stdin)
)";

namespace {

bool ValidTagChar(char c) {
  return absl::ascii_isalnum(c) || c == '_' || c == '.' || c == '-';
}

bool ValidPathComponent(absl::string_view c) {
  // [a-z0-9]+ separated by '.', '_', '__' or '-'+ (OCI distribution's grammar).
  if (c.empty()) return false;
  if (!absl::ascii_isalnum(c.front()) || !absl::ascii_isalnum(c.back())) {
    return false;
  }
  for (char ch : c) {
    if (absl::ascii_isupper(ch)) return false;
    if (!(absl::ascii_isalnum(ch) || ch == '.' || ch == '_' || ch == '-')) {
      return false;
    }
  }
  return true;
}

absl::StatusOr<std::pair<std::string, std::string>> SplitKeyValue(
    const std::string& flag, const std::string& value) {
  size_t eq = value.find('=');
  if (eq == std::string::npos || eq == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, " ", value, ": expected KEY=VALUE"));
  }
  return std::make_pair(value.substr(0, eq), value.substr(eq + 1));
}

}  // namespace

absl::StatusOr<std::string> NormalizeTag(const std::string& ref) {
  if (ref.empty()) return absl::InvalidArgumentError("-t: empty image name");
  if (absl::StrContains(ref, "@")) {
    return absl::InvalidArgumentError(
        absl::StrCat("-t ", ref, ": a tag cannot carry a digest"));
  }
  std::string name = ref;
  std::string tag = "latest";
  size_t slash = ref.rfind('/');
  size_t colon = ref.rfind(':');
  if (colon != std::string::npos &&
      (slash == std::string::npos || colon > slash)) {
    name = ref.substr(0, colon);
    tag = ref.substr(colon + 1);
  }
  if (tag.empty() || tag.size() > 128 || !ValidTagChar(tag[0]) ||
      tag[0] == '.' || tag[0] == '-') {
    return absl::InvalidArgumentError(
        absl::StrCat("-t ", ref, ": invalid tag \"", tag, "\""));
  }
  for (char c : tag) {
    if (!ValidTagChar(c)) {
      return absl::InvalidArgumentError(
          absl::StrCat("-t ", ref, ": invalid tag \"", tag, "\""));
    }
  }
  std::vector<std::string> parts = absl::StrSplit(name, '/');
  size_t first_path = 0;
  if (parts.size() > 1 &&
      (absl::StrContains(parts[0], ".") || absl::StrContains(parts[0], ":") ||
       parts[0] == "localhost")) {
    first_path = 1;  // registry host[:port]
  }
  if (first_path >= parts.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("-t ", ref, ": missing repository name"));
  }
  for (size_t i = first_path; i < parts.size(); ++i) {
    if (!ValidPathComponent(parts[i])) {
      return absl::InvalidArgumentError(absl::StrCat(
          "-t ", ref, ": invalid reference format: repository name \"",
          parts[i], "\" must be lowercase letters, digits and separators"));
    }
  }
  return absl::StrCat(name, ":", tag);
}

absl::StatusOr<v1::OutputSpec> ParseOutputFlag(const std::string& value) {
  v1::OutputSpec out;
  if (value.empty()) return absl::InvalidArgumentError("--output: empty value");
  if (!absl::StrContains(value, "=")) {
    // buildx's shorthands: "-" is a tar on stdout, anything else a directory.
    if (value == "-") {
      out.set_type(v1::OutputSpec::TAR);
    } else {
      out.set_type(v1::OutputSpec::LOCAL);
    }
    out.set_dest(value);
    out.set_tar(value == "-");
    return out;
  }
  bool have_tar = false;
  for (absl::string_view field : absl::StrSplit(value, ',')) {
    size_t eq = field.find('=');
    if (eq == absl::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--output ", value, ": field \"", field, "\" is not KEY=VALUE"));
    }
    std::string key = absl::AsciiStrToLower(field.substr(0, eq));
    std::string val(field.substr(eq + 1));
    if (key == "type") {
      if (val == "oci") {
        out.set_type(v1::OutputSpec::OCI);
      } else if (val == "docker") {
        out.set_type(v1::OutputSpec::DOCKER);
      } else if (val == "registry" || val == "image") {
        out.set_type(v1::OutputSpec::REGISTRY);
      } else if (val == "local") {
        out.set_type(v1::OutputSpec::LOCAL);
      } else if (val == "tar") {
        out.set_type(v1::OutputSpec::TAR);
      } else {
        return absl::InvalidArgumentError(
            absl::StrCat("--output ", value, ": unsupported type \"", val,
                         "\" (supported: oci, docker, registry, local, tar)"));
      }
    } else if (key == "dest") {
      out.set_dest(val);
    } else if (key == "tar") {
      if (val != "true" && val != "false") {
        return absl::InvalidArgumentError(
            absl::StrCat("--output ", value,
                         ": tar must be true or false, not \"", val, "\""));
      }
      have_tar = true;
      out.set_tar(val == "true");
    } else if (key == "push") {
      auto* kv = out.add_attrs();
      kv->set_key(key);
      kv->set_value(val);
    } else {
      auto* kv = out.add_attrs();
      kv->set_key(key);
      kv->set_value(val);
    }
  }
  if (out.type() == v1::OutputSpec::TYPE_UNSPECIFIED) {
    return absl::InvalidArgumentError(
        absl::StrCat("--output ", value, ": missing type="));
  }
  const char* type_name = "";
  switch (out.type()) {
    case v1::OutputSpec::OCI:
      type_name = "oci";
      break;
    case v1::OutputSpec::DOCKER:
      type_name = "docker";
      break;
    case v1::OutputSpec::LOCAL:
      type_name = "local";
      break;
    case v1::OutputSpec::TAR:
      type_name = "tar";
      break;
    default:
      break;
  }
  if (out.type() == v1::OutputSpec::LOCAL) {
    if (have_tar) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--output ", value, ": type=local is a directory; use type=tar"));
    }
    out.set_tar(false);
  } else if (!have_tar) {
    out.set_tar(true);
  }
  if (*type_name != '\0' && out.dest().empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--output ", value, ": dest= is required for type=", type_name));
  }
  if (out.type() == v1::OutputSpec::REGISTRY && !out.dest().empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--output ", value,
                     ": type=registry pushes the -t names; it takes "
                     "no dest="));
  }
  if (out.dest() == "-" && !out.tar()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--output ", value, ": dest=- writes a tar to stdout; type=", type_name,
        out.type() == v1::OutputSpec::LOCAL ? " is a directory (use type=tar)"
                                            : " needs tar=true"));
  }
  if (out.type() == v1::OutputSpec::DOCKER && !out.tar()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--output ", value, ": type=docker is always a tar"));
  }
  return out;
}

absl::StatusOr<int64_t> ParseShmSize(const std::string& value) {
  std::string digits = value;
  int64_t unit = 1;
  if (!digits.empty() && !absl::ascii_isdigit(digits.back())) {
    switch (absl::ascii_tolower(digits.back())) {
      case 'b':
        break;
      case 'k':
        unit = int64_t{1} << 10;
        break;
      case 'm':
        unit = int64_t{1} << 20;
        break;
      case 'g':
        unit = int64_t{1} << 30;
        break;
      default:
        unit = 0;
    }
    digits.pop_back();
  }
  int64_t n = 0;
  if (unit == 0 || !absl::SimpleAtoi(digits, &n) || n <= 0 ||
      n > (int64_t{1} << 50) / unit) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--shm-size ", value, ": want a size such as 67108864, 64m or 1g"));
  }
  return n * unit;
}

absl::StatusOr<std::pair<std::string, std::string>> ReadSecretFlag(
    const std::string& value) {
  std::string id, src, env;
  for (absl::string_view field : absl::StrSplit(value, ',')) {
    size_t eq = field.find('=');
    std::string key(field.substr(0, eq));
    std::string val(eq == absl::string_view::npos ? "" : field.substr(eq + 1));
    if (key == "id") {
      id = val;
    } else if (key == "src" || key == "source") {
      src = val;
    } else if (key == "env") {
      env = val;
    } else if (key == "type" && (val == "file" || val == "env")) {
      continue;
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("--secret ", value, ": unknown field \"", field, "\""));
    }
  }
  if (id.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--secret ", value, ": id= is required"));
  }
  if (src.empty() && env.empty()) {
    // buildx: a bare id is an environment variable if set, else a file.
    if (getenv(id.c_str()) != nullptr) {
      env = id;
    } else {
      src = id;
    }
  }
  if (!env.empty()) {
    const char* v = getenv(env.c_str());
    if (v == nullptr) {
      return absl::NotFoundError(absl::StrCat(
          "--secret id=", id, ": environment variable ", env, " is not set"));
    }
    return std::make_pair(id, std::string(v));
  }
  FILE* f = fopen(src.c_str(), "rb");
  if (f == nullptr) {
    return absl::NotFoundError(absl::StrCat(
        "--secret id=", id, ": cannot read ", src, ": ", strerror(errno)));
  }
  std::string data;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), f)) > 0) {
    data.append(buf, n);
    if (data.size() > (500 << 10)) {
      fclose(f);
      return absl::InvalidArgumentError(absl::StrCat(
          "--secret id=", id, ": ", src, " is larger than 500 KiB"));
    }
  }
  fclose(f);
  return std::make_pair(id, data);
}

absl::StatusOr<std::string> ParseCacheFlag(const std::string& flag,
                                           const std::string& value) {
  if (value.find('=') == std::string::npos) {
    if (value.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(flag, ": empty value"));
    }
    return value;
  }
  std::string type, ref;
  for (absl::string_view field : absl::StrSplit(value, ',')) {
    size_t eq = field.find('=');
    std::string key(field.substr(0, eq));
    std::string val(eq == absl::string_view::npos ? "" : field.substr(eq + 1));
    if (key == "type") {
      type = val;
    } else if (key == "ref") {
      ref = val;
    }
    // mode=, oci-mediatypes=, ...: every step is cached; nothing to choose.
  }
  if (!type.empty() && type != "registry") {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, " ", value, ": cache type \"", type,
                     "\" is not supported (type=registry is)"));
  }
  if (ref.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, " ", value, ": ref= is required"));
  }
  return ref;
}

absl::StatusOr<BuildFlags> ParseBuildFlags(const std::vector<std::string>& args,
                                           const std::string& env_scheduler) {
  BuildFlags f;
  f.scheduler = env_scheduler;
  std::vector<std::string> positional;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string arg = args[i];
    if (arg == "--") {
      for (++i; i < args.size(); ++i) positional.push_back(args[i]);
      break;
    }
    if (arg.size() < 2 || arg[0] != '-') {
      positional.push_back(arg);
      continue;
    }
    // Split "--flag=value"; short flags take the next word or an attached
    // value.
    std::string name = arg;
    std::string value;
    bool has_value = false;
    if (absl::StartsWith(arg, "--")) {
      size_t eq = arg.find('=');
      if (eq != std::string::npos) {
        name = arg.substr(0, eq);
        value = arg.substr(eq + 1);
        has_value = true;
      }
    } else if (arg.size() > 2) {
      name = arg.substr(0, 2);
      value = arg.substr(2);
      has_value = true;
    }
    auto take_value = [&]() -> absl::StatusOr<std::string> {
      if (has_value) return value;
      if (i + 1 >= args.size()) {
        return absl::InvalidArgumentError(
            absl::StrCat("flag needs an argument: ", name));
      }
      return args[++i];
    };
    auto boolean = [&](bool* out) -> absl::Status {
      if (!has_value || value == "true") {
        *out = true;
      } else if (value == "false") {
        *out = false;
      } else {
        return absl::InvalidArgumentError(
            absl::StrCat(name, "=", value, ": expected true or false"));
      }
      return absl::OkStatus();
    };
    if (name == "-t" || name == "--tag") {
      auto v = take_value();
      if (!v.ok()) return v.status();
      auto tag = NormalizeTag(*v);
      if (!tag.ok()) return tag.status();
      f.tags.push_back(*tag);
    } else if (name == "-f" || name == "--file") {
      auto v = take_value();
      if (!v.ok()) return v.status();
      f.dockerfile = *v;
    } else if (name == "--build-arg") {
      auto v = take_value();
      if (!v.ok()) return v.status();
      size_t eq = v->find('=');
      if (eq == 0 || v->empty()) {
        return absl::InvalidArgumentError(
            absl::StrCat("--build-arg ", *v, ": expected KEY=VALUE"));
      }
      if (eq == std::string::npos) {
        // As docker: `--build-arg K` takes K from the environment, if set.
        const char* env = getenv(v->c_str());
        if (env == nullptr) continue;
        f.build_args.emplace_back(*v, env);
      } else {
        f.build_args.emplace_back(v->substr(0, eq), v->substr(eq + 1));
      }
    } else if (name == "--label") {
      auto v = take_value();
      if (!v.ok()) return v.status();
      auto kv = SplitKeyValue("--label", *v);
      if (!kv.ok()) return kv.status();
      f.labels.push_back(*kv);
    } else if (name == "--timeout") {
      auto v = take_value();
      if (!v.ok()) return v.status();
      absl::Duration d;
      if (!absl::ParseDuration(*v, &d) || d <= absl::ZeroDuration()) {
        return absl::InvalidArgumentError(
            absl::StrCat("--timeout ", *v,
                         ": want a positive duration such as 90s, 30m or 2h"));
      }
      f.timeout_seconds = absl::ToInt64Seconds(absl::Ceil(d, absl::Seconds(1)));
    } else if (name == "--worker-label") {
      auto v = take_value();
      if (!v.ok()) return v.status();
      auto kv = SplitKeyValue("--worker-label", *v);
      if (!kv.ok()) return kv.status();
      f.worker_labels.push_back(*kv);
    } else if (name == "--target") {
      auto v = take_value();
      if (!v.ok()) return v.status();
      f.target = *v;
    } else if (name == "--platform") {
      auto v = take_value();
      if (!v.ok()) return v.status();
      for (absl::string_view one : absl::StrSplit(*v, ',')) {
        std::vector<std::string> parts = absl::StrSplit(one, '/');
        if (parts.size() < 2 || parts.size() > 3 ||
            std::any_of(parts.begin(), parts.end(),
                        [](const std::string& p) { return p.empty(); })) {
          return absl::InvalidArgumentError(absl::StrCat(
              "--platform ", one,
              ": want OS/ARCH or OS/ARCH/VARIANT (linux/amd64, linux/arm64, "
              "linux/arm/v7), several separated by commas"));
        }
        if (std::find(f.platforms.begin(), f.platforms.end(), one) ==
            f.platforms.end()) {
          f.platforms.emplace_back(one);
        }
      }
    } else if (name == "--no-cache") {
      auto s = boolean(&f.no_cache);
      if (!s.ok()) return s;
    } else if (name == "--push") {
      auto s = boolean(&f.push);
      if (!s.ok()) return s;
    } else if (name == "-q" || name == "--quiet") {
      auto s = boolean(&f.quiet);
      if (!s.ok()) return s;
    } else if (name == "--secret") {
      auto v = take_value();
      if (!v.ok()) return v.status();
      auto secret = ReadSecretFlag(*v);
      if (!secret.ok()) return secret.status();
      f.secrets.push_back(*std::move(secret));
    } else if (name == "--cache-from" || name == "--cache-to") {
      auto v = take_value();
      if (!v.ok()) return v.status();
      auto ref = ParseCacheFlag(name, *v);
      if (!ref.ok()) return ref.status();
      (name == "--cache-from" ? f.cache_from : f.cache_to).push_back(*ref);
    } else if (name == "--pull") {
      auto s = boolean(&f.pull);
      if (!s.ok()) return s;
    } else if (name == "--detach") {
      auto s = boolean(&f.detach);
      if (!s.ok()) return s;
    } else if (name == "--network") {
      auto v = take_value();
      if (!v.ok()) return v.status();
      if (*v != "default" && *v != "none" && *v != "host") {
        return absl::InvalidArgumentError(
            absl::StrCat("--network ", *v, ": expected default, none or host"));
      }
      f.network = *v;
    } else if (name == "--allow") {
      auto v = take_value();
      if (!v.ok()) return v.status();
      for (absl::string_view e : absl::StrSplit(*v, ',', absl::SkipEmpty())) {
        if (e != "network.host" && e != "security.insecure") {
          return absl::InvalidArgumentError(
              absl::StrCat("--allow ", e,
                           ": unknown entitlement (network.host or "
                           "security.insecure)"));
        }
        if (std::find(f.allow.begin(), f.allow.end(), e) == f.allow.end()) {
          f.allow.emplace_back(e);
        }
      }
    } else if (name == "--add-host") {
      auto v = take_value();
      if (!v.ok()) return v.status();
      auto line = sandbox::ParseAddHost(*v);
      if (!line.ok()) return line.status();
      f.add_hosts.push_back(*v);
    } else if (name == "--ulimit") {
      auto v = take_value();
      if (!v.ok()) return v.status();
      auto u = sandbox::ParseUlimit(*v);
      if (!u.ok()) return u.status();
      f.ulimits.push_back(*v);
    } else if (name == "--shm-size") {
      auto v = take_value();
      if (!v.ok()) return v.status();
      auto bytes = ParseShmSize(*v);
      if (!bytes.ok()) return bytes.status();
      f.shm_size = *bytes;
    } else if (name == "--metadata-file") {
      auto v = take_value();
      if (!v.ok()) return v.status();
      if (v->empty()) {
        return absl::InvalidArgumentError("--metadata-file: empty path");
      }
      f.metadata_file = *v;
    } else if (name == "--iidfile") {
      auto v = take_value();
      if (!v.ok()) return v.status();
      f.iidfile = *v;
    } else if (name == "--progress") {
      auto v = take_value();
      if (!v.ok()) return v.status();
      if (*v == "auto") {
        f.progress = ProgressMode::kAuto;
      } else if (*v == "tty") {
        f.progress = ProgressMode::kTty;
      } else if (*v == "plain") {
        f.progress = ProgressMode::kPlain;
      } else if (*v == "json" || *v == "rawjson") {
        f.progress = ProgressMode::kJson;
      } else {
        return absl::InvalidArgumentError(absl::StrCat(
            "--progress ", *v, ": expected auto, tty, plain or json"));
      }
    } else if (name == "-o" || name == "--output") {
      auto v = take_value();
      if (!v.ok()) return v.status();
      auto out = ParseOutputFlag(*v);
      if (!out.ok()) return out.status();
      f.outputs.push_back(*out);
    } else if (name == "--scheduler") {
      auto v = take_value();
      if (!v.ok()) return v.status();
      f.scheduler = *v;
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown flag: ", name, "\n\n", kBuildUsage));
    }
  }
  if (positional.size() != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"longshore build\" requires exactly 1 argument (the "
                     "build context), got ",
                     positional.size(), "\n\n", kBuildUsage));
  }
  f.context = positional[0];
  if (f.platforms.size() == 1) f.platform = f.platforms[0];
  if (f.platforms.size() > 1) {
    for (const auto& o : f.outputs) {
      if (o.type() != v1::OutputSpec::REGISTRY) {
        return absl::InvalidArgumentError(absl::StrCat(
            "--platform ", absl::StrJoin(f.platforms, ","),
            ": several platforms are combined into one index pushed to the "
            "registry (--push); other outputs take one platform at a time"));
      }
    }
    if (f.detach) {
      return absl::InvalidArgumentError(
          "--detach: several platforms are combined into one index by this "
          "client when their builds end; do not detach");
    }
  }
  if (f.DockerfileFromStdin() && f.ContextFromStdin()) {
    return absl::InvalidArgumentError(
        "-f - and CONTEXT - both read stdin: give one of them a path");
  }
  int to_stdout = 0;
  bool client_side = false;
  for (const auto& o : f.outputs) {
    if (o.dest() == "-") ++to_stdout;
    if (o.type() != v1::OutputSpec::REGISTRY) client_side = true;
  }
  if (to_stdout > 1) {
    return absl::InvalidArgumentError(
        "--output: only one output can be written to stdout (dest=-)");
  }
  if (to_stdout > 0 && f.quiet) {
    return absl::InvalidArgumentError(
        "-q prints the image digest on stdout, where an output goes "
        "(dest=-): use --iidfile instead");
  }
  if (f.detach && client_side) {
    return absl::InvalidArgumentError(
        "--detach: outputs of type oci, docker, local or tar are written by "
        "this client when the build ends; use type=registry (--push) or do "
        "not detach");
  }
  if (f.push) {
    bool have_registry = false;
    for (const auto& o : f.outputs) {
      if (o.type() == v1::OutputSpec::REGISTRY) have_registry = true;
    }
    if (!have_registry) {
      v1::OutputSpec reg;
      reg.set_type(v1::OutputSpec::REGISTRY);
      f.outputs.push_back(reg);
    }
  }
  for (const auto& o : f.outputs) {
    if (o.type() == v1::OutputSpec::REGISTRY && f.tags.empty()) {
      return absl::InvalidArgumentError(
          "--push/--output type=registry: at least one -t NAME:TAG is "
          "required to push");
    }
  }
  return f;
}

}  // namespace longshore::client
