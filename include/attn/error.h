// SPDX-License-Identifier: MIT
// Errors thrown by every public attn function. Messages name the function, the argument and the
// shapes:
//   "attention_forward: k has head size 48 but q has 64 (q (2, 4, 7, 64), k (2, 4, 9, 48))".
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>

namespace attn {

// Base of everything attn throws. Catch this in frontends; the Python bindings map it to
// exceptions.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};
// An argument has the wrong rank, size or layout.
class ShapeError : public Error {
 public:
  using Error::Error;
};
// An argument has a bad value (negative window, non-finite scale, key length out of range, ...).
class ValueError : public Error {
 public:
  using Error::Error;
};
// A file could not be read or written, or its contents are malformed.
class IoError : public Error {
 public:
  using Error::Error;
};

namespace detail {
template <typename... Parts>
std::string concat(const Parts&... parts) {
  std::ostringstream os;
  (os << ... << parts);
  return os.str();
}

// The length of the well-formed UTF-8 sequence starting at s[i], or 0 if there is none there.
inline size_t utf8_sequence_length(std::string_view s, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = byte(i);
  if (c < 0x80) return 1;
  size_t n = 0;
  unsigned char lo = 0x80, hi = 0xBF;  // the second byte's range (narrower after E0, ED, F0, F4)
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0) lo = 0xA0;  // no overlong forms
    if (c == 0xED) hi = 0x9F;  // no UTF-16 surrogates
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0) lo = 0x90;  // no overlong forms
    if (c == 0xF4) hi = 0x8F;  // nothing above U+10FFFF
  } else {
    return 0;
  }
  if (i + n > s.size() || byte(i + 1) < lo || byte(i + 1) > hi) return 0;
  for (size_t k = 2; k < n; ++k)
    if (byte(i + k) < 0x80 || byte(i + k) > 0xBF) return 0;
  return n;
}

// `text` with every byte that is not part of well-formed UTF-8 written as \xNN. Messages quote
// file contents (a JSON parser's excerpt of a binary file) and paths, and Python turned a message
// with such a byte into an exception with no message at all.
inline std::string valid_utf8(std::string text) {
  size_t i = 0;
  for (size_t n; i < text.size() && (n = utf8_sequence_length(text, i)) > 0;) i += n;
  if (i == text.size()) return text;  // the usual case: nothing to escape
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out(text, 0, i);
  while (i < text.size()) {
    if (const size_t n = utf8_sequence_length(text, i); n > 0) {
      out.append(text, i, n);
      i += n;
    } else {
      const auto c = static_cast<unsigned char>(text[i++]);
      out += {'\\', 'x', kHex[c >> 4], kHex[c & 15]};
    }
  }
  return out;
}
}  // namespace detail

// Throws E("fn: part1part2..."), as valid UTF-8. Used for every argument check in the public API.
template <typename E, typename... Parts>
[[noreturn]] void fail(std::string_view fn, const Parts&... parts) {
  throw E(detail::valid_utf8(detail::concat(fn, ": ", parts...)));
}

}  // namespace attn

// Internal invariants (never user input): checked in debug and sanitizer builds only.
#if !defined(NDEBUG) || defined(ATTN_ENABLE_DCHECK)
#define ATTN_DCHECK(cond)                                                                  \
  do {                                                                                     \
    if (!(cond))                                                                           \
      throw ::attn::Error(::attn::detail::concat("internal check failed: ", #cond, " at ", \
                                                 __FILE__, ":", __LINE__));                \
  } while (0)
#else
#define ATTN_DCHECK(cond) \
  do {                    \
  } while (0)
#endif
