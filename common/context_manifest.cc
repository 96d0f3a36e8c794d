#include "common/context_manifest.h"

#include <sys/stat.h>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/sha256.h"

namespace longshore {
namespace {

using longshore::v1::ContextEntry;
using longshore::v1::ContextManifestChunk;

// A chunk ends after an entry whose path hashes to 0 modulo this (so chunks
// hold this many entries on average), or at kMaxChunkEntries.
constexpr uint64_t kChunkModulus = 64;
constexpr int kMaxChunkEntries = 1024;

uint64_t PathHash(const std::string& path) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a
  for (unsigned char c : path) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h ^ (h >> 29);
}

void PutVarint(uint64_t v, std::string* out) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

bool GetVarint(const std::string& in, size_t* pos, uint64_t* v) {
  *v = 0;
  for (int shift = 0; shift < 64 && *pos < in.size(); shift += 7) {
    unsigned char b = static_cast<unsigned char>(in[(*pos)++]);
    *v |= static_cast<uint64_t>(b & 0x7f) << shift;
    if ((b & 0x80) == 0) return true;
  }
  return false;
}

absl::Status CheckEntry(const ContextEntry& e) {
  const std::string& p = e.path();
  if (p.empty() || p.size() > 4096) {
    return absl::InvalidArgumentError(
        absl::StrCat("context entry path \"", p, "\" is empty or too long"));
  }
  for (absl::string_view part : absl::StrSplit(p, '/')) {
    if (part.empty() || part == "." || part == "..") {
      return absl::InvalidArgumentError(absl::StrCat(
          "context entry path \"", p, "\" has an empty, . or .. component"));
    }
  }
  if (p.find('\0') != std::string::npos) {
    return absl::InvalidArgumentError("context entry path holds a NUL byte");
  }
  uint32_t type = e.mode() & S_IFMT;
  if (type == S_IFREG) {
    if (!IsValidDigest(e.digest()) || e.size() < 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "context file \"", p, "\" lacks a valid digest or size"));
    }
  } else if (type == S_IFLNK) {
    if (e.link_target().empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("context symlink \"", p, "\" has no target"));
    }
  } else if (type != S_IFDIR) {
    return absl::InvalidArgumentError(absl::StrCat(
        "context entry \"", p, "\" is not a file, directory or symlink"));
  }
  return absl::OkStatus();
}

}  // namespace

BuiltManifest BuildManifest(const std::vector<ContextFile>& files) {
  BuiltManifest out;
  longshore::v1::ContextManifest root;
  root.set_version(1);
  root.set_entries(static_cast<int64_t>(files.size()));
  std::string mtimes;
  int64_t prev = 0;
  ContextManifestChunk chunk;
  ManifestChunk pending;
  auto flush = [&] {
    if (chunk.entries_size() == 0) return;
    chunk.SerializeToString(&pending.bytes);
    pending.digest = Sha256Digest(pending.bytes);
    root.add_chunks(pending.digest);
    out.chunks.push_back(std::move(pending));
    pending = ManifestChunk();
    chunk.Clear();
  };
  for (const ContextFile& f : files) {
    *chunk.add_entries() = f.entry;
    if ((f.entry.mode() & S_IFMT) == S_IFREG) {
      pending.file_digests.push_back(f.entry.digest());
      out.total_size += f.entry.size();
    }
    // Wrapping arithmetic: any two mtimes have a delta that decodes back.
    int64_t delta = static_cast<int64_t>(static_cast<uint64_t>(f.mtime) -
                                         static_cast<uint64_t>(prev));
    prev = f.mtime;
    PutVarint((static_cast<uint64_t>(delta) << 1) ^
                  static_cast<uint64_t>(delta >> 63),
              &mtimes);
    if (PathHash(f.entry.path()) % kChunkModulus == 0 ||
        chunk.entries_size() >= kMaxChunkEntries) {
      flush();
    }
  }
  flush();
  root.set_total_size(out.total_size);
  root.set_mtimes(std::move(mtimes));
  root.SerializeToString(&out.root);
  out.digest = Sha256Digest(out.root);
  return out;
}

absl::StatusOr<ParsedManifest> ParseManifest(const std::string& root_bytes) {
  ParsedManifest out;
  if (!out.root.ParseFromString(root_bytes)) {
    return absl::InvalidArgumentError("context manifest does not parse");
  }
  if (out.root.version() != 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "context manifest version ", out.root.version(), " is not 1"));
  }
  if (out.root.entries() < 0 || out.root.total_size() < 0) {
    return absl::InvalidArgumentError("context manifest counts are negative");
  }
  for (const std::string& d : out.root.chunks()) {
    if (!IsValidDigest(d)) {
      return absl::InvalidArgumentError(
          absl::StrCat("context manifest chunk \"", d, "\" is not a digest"));
    }
  }
  const std::string& m = out.root.mtimes();
  size_t pos = 0;
  int64_t prev = 0;
  while (pos < m.size()) {
    uint64_t z;
    if (!GetVarint(m, &pos, &z)) {
      return absl::InvalidArgumentError("context manifest mtimes are cut off");
    }
    int64_t delta = static_cast<int64_t>(z >> 1) ^ -static_cast<int64_t>(z & 1);
    prev = static_cast<int64_t>(static_cast<uint64_t>(prev) +
                                static_cast<uint64_t>(delta));
    out.mtimes.push_back(prev);
  }
  if (static_cast<int64_t>(out.mtimes.size()) != out.root.entries()) {
    return absl::InvalidArgumentError(
        absl::StrCat("context manifest has ", out.mtimes.size(), " mtimes for ",
                     out.root.entries(), " entries"));
  }
  return out;
}

absl::StatusOr<ContextManifestChunk> ParseChunk(const std::string& bytes) {
  ContextManifestChunk chunk;
  if (!chunk.ParseFromString(bytes)) {
    return absl::InvalidArgumentError("context manifest chunk does not parse");
  }
  for (const ContextEntry& e : chunk.entries()) {
    absl::Status s = CheckEntry(e);
    if (!s.ok()) return s;
  }
  return chunk;
}

absl::Status CheckEntries(const ParsedManifest& manifest,
                          const std::vector<ContextManifestChunk>& chunks) {
  absl::flat_hash_set<absl::string_view> paths;
  absl::flat_hash_set<absl::string_view> links;
  int64_t count = 0;
  int64_t total = 0;
  for (const ContextManifestChunk& c : chunks) {
    for (const ContextEntry& e : c.entries()) {
      ++count;
      if (!paths.insert(e.path()).second) {
        return absl::InvalidArgumentError(
            absl::StrCat("context path \"", e.path(), "\" appears twice"));
      }
      if ((e.mode() & S_IFMT) == S_IFREG) total += e.size();
      if ((e.mode() & S_IFMT) == S_IFLNK) links.insert(e.path());
    }
  }
  for (const ContextManifestChunk& c : chunks) {
    for (const ContextEntry& e : c.entries()) {
      absl::string_view p = e.path();
      for (size_t slash = p.find('/'); slash != absl::string_view::npos;
           slash = p.find('/', slash + 1)) {
        if (links.contains(p.substr(0, slash))) {
          return absl::InvalidArgumentError(
              absl::StrCat("context path \"", p, "\" lies beneath a symlink"));
        }
      }
    }
  }
  if (count != manifest.root.entries() || total != manifest.root.total_size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("context manifest says ", manifest.root.entries(),
                     " entries of ", manifest.root.total_size(),
                     " bytes; its chunks hold ", count, " of ", total));
  }
  return absl::OkStatus();
}

}  // namespace longshore
