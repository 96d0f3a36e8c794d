// `longshore build` command line, parsed the way `docker buildx build` reads
// it.
#ifndef LONGSHORE_CLIENT_BUILD_FLAGS_H_
#define LONGSHORE_CLIENT_BUILD_FLAGS_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "proto/longshore.pb.h"

namespace longshore::client {

enum class ProgressMode { kAuto, kTty, kPlain, kJson };

struct BuildFlags {
  std::vector<std::string>
      tags;                // normalized (docker.io/library/... kept short)
  std::string dockerfile;  // -f, as given (empty: CONTEXT/Dockerfile)
  std::vector<std::pair<std::string, std::string>> build_args;
  std::vector<std::pair<std::string, std::string>> labels;
  // --timeout: seconds an attempt may run; 0: the farm's default.
  int64_t timeout_seconds = 0;
  // --worker-label K=V: labels the worker must have.
  std::vector<std::pair<std::string, std::string>> worker_labels;
  std::string target;
  // --platform OS/ARCH[/VARIANT]; empty: whatever the worker builds natively.
  std::string platform;
  // --platform a,b (several): one build per platform, combined into one
  // index; `platform` is then empty.
  std::vector<std::string> platforms;
  bool no_cache = false;
  bool push = false;
  ProgressMode progress = ProgressMode::kAuto;
  std::vector<v1::OutputSpec> outputs;
  std::string scheduler;  // HOST:PORT; empty builds in-process
  std::string context;    // CONTEXT directory
  bool quiet = false;     // -q: print only the image digest
  std::string iidfile;    // --iidfile: write the image digest here
  // --secret id=ID[,src=FILE|,env=VAR]: id and the secret's bytes.
  std::vector<std::pair<std::string, std::string>> secrets;
  // --cache-from / --cache-to type=registry,ref=REGISTRY/REPO (or a bare ref).
  std::vector<std::string> cache_from;
  std::vector<std::string> cache_to;
  // --pull: resolve every base image at its registry again.
  bool pull = false;
  // --network default|none|host: RUN steps' network ("" leaves it to the
  // worker).
  std::string network;
  // --allow network.host|security.insecure (repeatable, or comma-separated).
  std::vector<std::string> allow;
  // --detach: print the build id once submitted and exit; never cancels.
  bool detach = false;
  // --metadata-file FILE: buildx's JSON of the result.
  std::string metadata_file;
  // --add-host NAME:IP, --ulimit NAME=SOFT[:HARD] (as given, checked),
  // --shm-size in bytes (0: the default 64 MiB).
  std::vector<std::string> add_hosts;
  std::vector<std::string> ulimits;
  int64_t shm_size = 0;

  // `-f -`: the Dockerfile is read from stdin.
  bool DockerfileFromStdin() const { return dockerfile == "-"; }
  // CONTEXT `-`: a tar (or a lone Dockerfile) is read from stdin.
  bool ContextFromStdin() const { return context == "-"; }
};

// The cache repository of one `--cache-from`/`--cache-to` value: "REF" or
// "type=registry,ref=REF[,mode=...]". Other cache types are refused by name.
absl::StatusOr<std::string> ParseCacheFlag(const std::string& flag,
                                           const std::string& value);

// Reads one `--secret` value as docker buildx does: id=ID with src=FILE (or
// source=), or env=VAR; a bare id=ID reads the environment variable ID, else
// the file ID. Errors name the secret and what is missing.
absl::StatusOr<std::pair<std::string, std::string>> ReadSecretFlag(
    const std::string& value);

// Parses the arguments after `build`. `env_scheduler` is $LONGSHORE_SCHEDULER.
// Errors name the flag and what was wrong with it.
absl::StatusOr<BuildFlags> ParseBuildFlags(const std::vector<std::string>& args,
                                           const std::string& env_scheduler);

// Parses one `--output` value: "type=oci,dest=out.tar", "type=local,dest=DIR",
// "type=tar,dest=-"... and buildx's shorthands: "-o DIR" means type=local,
// "-o -" a tar of the filesystem on stdout.
absl::StatusOr<v1::OutputSpec> ParseOutputFlag(const std::string& value);

// Checks a `-t` reference: [HOST[:PORT]/]PATH[:TAG], lower-case path
// components, tag of at most 128 [A-Za-z0-9_.-] characters. Adds ":latest" when
// no tag is given.
absl::StatusOr<std::string> NormalizeTag(const std::string& ref);

// `--shm-size`: bytes, or a number with b, k, m or g (docker's units, powers
// of 1024).
absl::StatusOr<int64_t> ParseShmSize(const std::string& value);

extern const char kBuildUsage[];

}  // namespace longshore::client

#endif  // LONGSHORE_CLIENT_BUILD_FLAGS_H_
