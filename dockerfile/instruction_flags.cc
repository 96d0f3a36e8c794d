#include "dockerfile/instruction_flags.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace longshore::dockerfile {

InstructionFlags InstructionFlags::For(absl::string_view cmd) {
  InstructionFlags f;
  if (cmd == "from") {
    f.Add("platform", Type::kString);
  } else if (cmd == "run") {
    f.Add("mount", Type::kStrings);
    f.Add("network", Type::kString);
    f.Add("security", Type::kString);
  } else if (cmd == "copy" || cmd == "add") {
    f.Add("chown", Type::kString);
    f.Add("chmod", Type::kString);
    f.Add("link", Type::kBool);
    f.Add("exclude", Type::kStrings);
    if (cmd == "copy") {
      f.Add("from", Type::kString);
      f.Add("parents", Type::kBool);
    } else {
      f.Add("keep-git-dir", Type::kBool);
      f.Add("checksum", Type::kString);
      f.Add("unpack", Type::kBool);
    }
  } else if (cmd == "healthcheck") {
    f.Add("interval", Type::kString);
    f.Add("timeout", Type::kString);
    f.Add("start-period", Type::kString);
    f.Add("start-interval", Type::kString);
    f.Add("retries", Type::kString);
  }
  return f;
}

void InstructionFlags::Add(const std::string& name, Type type) {
  types_[name] = type;
}

absl::Status InstructionFlags::Parse(const std::vector<std::string>& words) {
  for (const std::string& word : words) {
    if (!absl::StartsWith(word, "--")) {
      return absl::InvalidArgumentError(
          absl::StrCat("arg should start with -- : ", word));
    }
    std::string arg = word.substr(2);
    std::string name = arg, value;
    bool has_value = false;
    size_t eq = arg.find('=');
    if (eq != std::string::npos) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
      has_value = true;
    }
    auto it = types_.find(name);
    if (it == types_.end()) {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag: ", name));
    }
    if (it->second != Type::kStrings && values_.count(name) > 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("duplicate flag specified: ", name));
    }
    switch (it->second) {
      case Type::kBool: {
        if (!has_value) {
          value = "true";
        }
        std::string lower = absl::AsciiStrToLower(value);
        if (lower != "true" && lower != "false") {
          return absl::InvalidArgumentError(absl::StrCat(
              "expecting boolean value for flag ", name, ", not: ", value));
        }
        values_[name] = {lower};
        break;
      }
      case Type::kString:
      case Type::kStrings:
        if (!has_value) {
          return absl::InvalidArgumentError(
              absl::StrCat("missing a value on flag: ", name));
        }
        values_[name].push_back(value);
        break;
    }
  }
  return absl::OkStatus();
}

std::string InstructionFlags::String(const std::string& name) const {
  auto it = values_.find(name);
  if (it == values_.end() || it->second.empty()) return "";
  return it->second.back();
}

bool InstructionFlags::Bool(const std::string& name, bool default_value) const {
  auto it = values_.find(name);
  if (it == values_.end() || it->second.empty()) return default_value;
  return it->second.back() == "true";
}

std::vector<std::string> InstructionFlags::Strings(
    const std::string& name) const {
  auto it = values_.find(name);
  if (it == values_.end()) return {};
  return it->second;
}

}  // namespace longshore::dockerfile
