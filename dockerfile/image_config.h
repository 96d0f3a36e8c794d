// The image configuration a stage builds up instruction by instruction. The
// worker maps it to the OCI image config JSON.
#ifndef LONGSHORE_DOCKERFILE_IMAGE_CONFIG_H_
#define LONGSHORE_DOCKERFILE_IMAGE_CONFIG_H_

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace longshore::dockerfile {

struct Healthcheck {
  // ["NONE"], ["CMD", args...] or ["CMD-SHELL", command], as in the OCI/Docker
  // config.
  std::vector<std::string> test;
  int64_t interval_ns = 0, timeout_ns = 0, start_period_ns = 0,
          start_interval_ns = 0;
  int retries = 0;
};

struct ImageConfig {
  std::vector<std::string> env;  // "K=V" in order, one entry per key
  std::vector<std::string> cmd, entrypoint;
  bool cmd_set = false, entrypoint_set = false;
  std::string working_dir, user, stop_signal;
  std::map<std::string, std::string> labels;
  std::set<std::string> exposed_ports;  // "80/tcp"
  std::set<std::string> volumes;
  std::optional<Healthcheck> healthcheck;
  std::vector<std::string> shell;     // empty = default ["/bin/sh","-c"]
  std::vector<std::string> on_build;  // trigger instructions, as written
  std::string maintainer;  // deprecated MAINTAINER (the image's "author")
};

// Sets K=V in a "K=V" list, replacing an existing entry for K in place.
void SetEnv(std::vector<std::string>* env, const std::string& key,
            const std::string& value);
// The value of K in a "K=V" list (the last entry for K), or nullopt.
std::optional<std::string> GetEnv(const std::vector<std::string>& env,
                                  const std::string& key);

}  // namespace longshore::dockerfile

#endif  // LONGSHORE_DOCKERFILE_IMAGE_CONFIG_H_
