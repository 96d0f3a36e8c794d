#include "dockerfile/text_util.h"

namespace longshore::dockerfile::text {

uint32_t DecodeRune(absl::string_view s, size_t pos, size_t* width) {
  const auto b0 = static_cast<unsigned char>(s[pos]);
  *width = 1;
  if (b0 < 0x80) return b0;
  size_t n;
  uint32_t r, min;
  if ((b0 & 0xE0) == 0xC0) {
    n = 2, r = b0 & 0x1F, min = 0x80;
  } else if ((b0 & 0xF0) == 0xE0) {
    n = 3, r = b0 & 0x0F, min = 0x800;
  } else if ((b0 & 0xF8) == 0xF0) {
    n = 4, r = b0 & 0x07, min = 0x10000;
  } else {
    return kRuneError;
  }
  if (pos + n > s.size()) return kRuneError;
  for (size_t i = 1; i < n; ++i) {
    const auto b = static_cast<unsigned char>(s[pos + i]);
    if ((b & 0xC0) != 0x80) return kRuneError;
    r = (r << 6) | (b & 0x3F);
  }
  // Overlong forms, surrogates and values past U+10FFFF are invalid in Go.
  if (r < min || r > 0x10FFFF || (r >= 0xD800 && r <= 0xDFFF)) {
    return kRuneError;
  }
  *width = n;
  return r;
}

void AppendRune(std::string* out, uint32_t r) {
  if (r > 0x10FFFF || (r >= 0xD800 && r <= 0xDFFF)) r = kRuneError;
  if (r < 0x80) {
    out->push_back(static_cast<char>(r));
  } else if (r < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (r >> 6)));
    out->push_back(static_cast<char>(0x80 | (r & 0x3F)));
  } else if (r < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (r >> 12)));
    out->push_back(static_cast<char>(0x80 | ((r >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (r & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (r >> 18)));
    out->push_back(static_cast<char>(0x80 | ((r >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((r >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (r & 0x3F)));
  }
}

// Go's unicode.IsSpace: the Latin-1 spaces plus category Zs, U+2028, U+2029.
bool IsSpace(uint32_t r) {
  switch (r) {
    case '\t':
    case '\n':
    case '\v':
    case '\f':
    case '\r':
    case ' ':
    case 0x85:
    case 0xA0:
    case 0x1680:
    case 0x2028:
    case 0x2029:
    case 0x202F:
    case 0x205F:
    case 0x3000:
      return true;
    default:
      return r >= 0x2000 && r <= 0x200A;
  }
}

// Decimal digits (category Nd). Outside ASCII only the common blocks are
// listed: Arabic-Indic, Devanagari and fullwidth digits.
bool IsDigit(uint32_t r) {
  if (r < 0x80) return r >= '0' && r <= '9';
  return (r >= 0x660 && r <= 0x669) || (r >= 0x6F0 && r <= 0x6F9) ||
         (r >= 0x966 && r <= 0x96F) || (r >= 0xFF10 && r <= 0xFF19);
}

namespace {

// Blocks of punctuation, symbols, separators and controls that are not
// letters. Everything else outside ASCII that is assigned is treated as a
// letter: scripts (Latin, Greek, Cyrillic, CJK, Hangul, ...) are.
bool IsNonLetterBlock(uint32_t r) {
  if (r < 0xC0) return !(r == 0xAA || r == 0xB5 || r == 0xBA);
  if (r == 0xD7 || r == 0xF7) return true;
  if (r >= 0x2000 && r <= 0x2BFF) return true;  // punctuation .. symbols
  if (r >= 0x2E00 && r <= 0x2E7F) return true;  // supplemental punctuation
  if (r >= 0x3000 && r <= 0x3004) return true;  // CJK punctuation
  if (r >= 0x3008 && r <= 0x3020) return true;
  if (r >= 0xD800 && r <= 0xF8FF) return true;    // surrogates, private use
  if (r >= 0xFE00 && r <= 0xFE6F) return true;    // variation selectors, forms
  if (r >= 0xFF00 && r <= 0xFF20) return true;    // fullwidth punctuation
  if (r >= 0xFFF0 && r <= 0xFFFF) return true;    // specials
  if (r >= 0x1F000 && r <= 0x1FAFF) return true;  // emoji and symbols
  if (r >= 0xE0000) return true;                  // tags, private use planes
  return false;
}

}  // namespace

bool IsLetter(uint32_t r) {
  if (r < 0x80) return (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z');
  if (IsDigit(r)) return false;
  return !IsNonLetterBlock(r);
}

// strconv.IsPrint: letters, marks, numbers, punctuation, symbols and ASCII
// space. Non-printable outside ASCII: C1 controls, the non-ASCII spaces,
// format characters (soft hyphen, zero-width, bidi controls, BOM), surrogates,
// private use and noncharacters.
bool IsPrint(uint32_t r) {
  if (r < 0x80) return r >= 0x20 && r < 0x7F;
  if (r < 0xA0) return false;
  if (r == 0xA0 || r == 0xAD) return false;
  if (IsSpace(r)) return false;
  if (r >= 0x200B && r <= 0x200F) return false;
  if (r >= 0x202A && r <= 0x202E) return false;
  if (r >= 0x2060 && r <= 0x206F) return false;
  if (r == 0xFEFF) return false;
  if (r >= 0xFFF9 && r <= 0xFFFB) return false;
  if (r == 0xFFFE || r == 0xFFFF) return false;
  if (r >= 0xD800 && r <= 0xF8FF) return false;
  if (r >= 0xE0000) return false;
  return r <= 0x10FFFF;
}

absl::string_view TrimLeftSpace(absl::string_view s) {
  size_t pos = 0;
  while (pos < s.size()) {
    size_t w;
    uint32_t r = DecodeRune(s, pos, &w);
    if (!IsSpace(r)) break;
    pos += w;
  }
  return s.substr(pos);
}

absl::string_view TrimRightSpace(absl::string_view s) {
  // Walk forward remembering where the trailing run of spaces starts.
  size_t pos = 0, end = 0;
  while (pos < s.size()) {
    size_t w;
    uint32_t r = DecodeRune(s, pos, &w);
    pos += w;
    if (!IsSpace(r)) end = pos;
  }
  return s.substr(0, end);
}

absl::string_view TrimSpace(absl::string_view s) {
  return TrimRightSpace(TrimLeftSpace(s));
}

}  // namespace longshore::dockerfile::text
