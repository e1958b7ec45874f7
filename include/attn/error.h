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
}  // namespace detail

// Throws E("fn: part1part2..."). Used for every argument check in the public API.
template <typename E, typename... Parts>
[[noreturn]] void fail(std::string_view fn, const Parts&... parts) {
  throw E(detail::concat(fn, ": ", parts...));
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
