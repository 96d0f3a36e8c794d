// The `--name=value` flags written before an instruction's arguments, checked
// against what that instruction accepts, with BuildKit's error wording.
#ifndef LONGSHORE_DOCKERFILE_INSTRUCTION_FLAGS_H_
#define LONGSHORE_DOCKERFILE_INSTRUCTION_FLAGS_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace longshore::dockerfile {

class InstructionFlags {
 public:
  enum class Type { kString, kBool, kStrings };

  // The flags `cmd` (lower-case) accepts; an instruction without flags gets
  // an empty set, so any flag is "unknown flag".
  static InstructionFlags For(absl::string_view cmd);

  void Add(const std::string& name, Type type);

  // Parses words such as "--from=builder", "--link", "--link=false".
  absl::Status Parse(const std::vector<std::string>& words);

  bool IsSet(const std::string& name) const { return values_.count(name) > 0; }
  std::string String(const std::string& name) const;
  bool Bool(const std::string& name, bool default_value = false) const;
  std::vector<std::string> Strings(const std::string& name) const;

 private:
  std::map<std::string, Type> types_;
  std::map<std::string, std::vector<std::string>> values_;
};

}  // namespace longshore::dockerfile

#endif  // LONGSHORE_DOCKERFILE_INSTRUCTION_FLAGS_H_
