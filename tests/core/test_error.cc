// SPDX-License-Identifier: MIT
// Error messages are valid UTF-8: they quote file contents and paths, and Python raised a message
// with an invalid byte as an exception with no message at all.
#include <string>

#include "testing/testing.h"

namespace attn::testing {
namespace {

TEST(ErrorMessage, KeepsWellFormedUtf8AndEscapesEveryOtherByte) {
  using detail::valid_utf8;
  EXPECT_EQ(valid_utf8("plain ascii"), "plain ascii");
  EXPECT_EQ(valid_utf8(""), "");
  // 2-, 3- and 4-byte sequences kept: é, €, 😀, U+10FFFF, U+FFFF.
  const std::string ok = "\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 \xF4\x8F\xBF\xBF \xEF\xBF\xBF";
  EXPECT_EQ(valid_utf8(ok), ok);
  EXPECT_EQ(valid_utf8("a\xFF" "b\xFE"), "a\\xFFb\\xFE");
  EXPECT_EQ(valid_utf8("\x80"), "\\x80");                    // a lone continuation byte
  EXPECT_EQ(valid_utf8("x\xC3"), "x\\xC3");                  // cut short at the end
  EXPECT_EQ(valid_utf8("\xE2\x82" "A"), "\\xE2\\x82A");      // cut short before an ASCII byte
  EXPECT_EQ(valid_utf8("\xC0\xAF"), "\\xC0\\xAF");           // overlong '/'
  EXPECT_EQ(valid_utf8("\xE0\x80\xAF"), "\\xE0\\x80\\xAF");  // overlong, three bytes
  EXPECT_EQ(valid_utf8("\xED\xA0\x80"), "\\xED\\xA0\\x80");  // a UTF-16 surrogate
  EXPECT_EQ(valid_utf8("\xF4\x90\x80\x80"), "\\xF4\\x90\\x80\\x80");  // above U+10FFFF
  EXPECT_EQ(valid_utf8("\xF5\x80\x80\x80"), "\\xF5\\x80\\x80\\x80");
  // A valid sequence after an escaped byte is kept as it is.
  EXPECT_EQ(valid_utf8("\xFF\xC3\xA9"), "\\xFF\xC3\xA9");
}

TEST(ErrorMessage, FailEscapesWhatItQuotes) {
  ATTN_EXPECT_THROW_MSG(fail<ValueError>("load", "bad byte \xFF in \"", std::string("p\xC3\xA9"), "\""),
                        ValueError, "load: bad byte \\xFF in \"p\xC3\xA9\"");
}

}  // namespace
}  // namespace attn::testing
