#include "dockerfile/image_config.h"

namespace longshore::dockerfile {

void SetEnv(std::vector<std::string>* env, const std::string& key,
            const std::string& value) {
  const std::string prefix = key + "=";
  for (std::string& kv : *env) {
    if (kv.compare(0, prefix.size(), prefix) == 0 || kv == key) {
      kv = prefix + value;
      return;
    }
  }
  env->push_back(prefix + value);
}

std::optional<std::string> GetEnv(const std::vector<std::string>& env,
                                  const std::string& key) {
  std::optional<std::string> found;
  const std::string prefix = key + "=";
  for (const std::string& kv : env) {
    if (kv.compare(0, prefix.size(), prefix) == 0) {
      found = kv.substr(prefix.size());
    } else if (kv == key) {
      found = "";
    }
  }
  return found;
}

}  // namespace longshore::dockerfile
