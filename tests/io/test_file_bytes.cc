// SPDX-License-Identifier: MIT
// File errors through the public readers and writers (src/io/file_bytes.cc underneath): directories
// and special files are rejected by name, messages carry the OS reason, a failed write leaves the
// old file untouched and no temporary file behind, and devices are written in place (never
// replaced).
#include <signal.h>
#include <sys/resource.h>

#include <filesystem>
#include <fstream>

#include "testing/testing.h"

namespace attn::testing {
namespace {

namespace fs = std::filesystem;

Tensor small_tensor(int64_t n) {
  Tensor t(Shape{n});
  for (int64_t i = 0; i < n; ++i) t.data()[i] = static_cast<float>(i);
  return t;
}

TEST(FileBytes, ReadersRejectDirectoriesAndSpecialFiles) {
  const std::string dir = ::testing::TempDir();
  ATTN_EXPECT_THROW_MSG(io::read_npy(dir), IoError, "read_npy", "is a directory, not a file");
  ATTN_EXPECT_THROW_MSG(io::read_safetensors(dir), IoError, "read_safetensors", "is a directory");
  ATTN_EXPECT_THROW_MSG(io::read_npy("/dev/zero"), IoError, "'/dev/zero' is not a regular file");
  ATTN_EXPECT_THROW_MSG(io::read_npy(dir + "/no/such/file.npy"), IoError, "cannot open",
                        "No such file or directory");
}

TEST(FileBytes, WritersReportTheOsReason) {
  const Tensor t = small_tensor(10);
  ATTN_EXPECT_THROW_MSG(io::write_npy("/dev/full", t.view()), IoError, "write_npy",
                        "cannot write '/dev/full'", "No space left on device");
  EXPECT_TRUE(fs::is_character_file("/dev/full"));  // written in place, not replaced
  ATTN_EXPECT_THROW_MSG(io::write_npy(::testing::TempDir() + "/missing/dir/x.npy", t.view()),
                        IoError, "cannot open", "No such file or directory");
  ATTN_EXPECT_THROW_MSG(io::write_npy(::testing::TempDir(), t.view()), IoError,
                        "it is a directory");
  io::write_npy("/dev/null", t.view());  // a device that accepts everything: fine
}

TEST(FileBytes, AFailedWriteLeavesTheOldFileAndNoTemporary) {
  const std::string dir = ::testing::TempDir() + "/file_bytes_partial";
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string path = dir + "/x.npy";
  io::write_npy(path, small_tensor(4).view());
  const auto old_size = fs::file_size(path);
  // Limit the size of files this process may write: the 40 KB write fails part way, as on a full
  // disk.
  signal(SIGXFSZ, SIG_IGN);
  rlimit saved{};
  getrlimit(RLIMIT_FSIZE, &saved);
  rlimit limit = saved;
  limit.rlim_cur = 4096;
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &limit), 0);
  bool threw = false;
  try {
    io::write_npy(path, small_tensor(10000).view());
  } catch (const IoError& e) {
    threw = true;
    EXPECT_NE(std::string(e.what()).find("File too large"), std::string::npos) << e.what();
  }
  setrlimit(RLIMIT_FSIZE, &saved);
  signal(SIGXFSZ, SIG_DFL);
  EXPECT_TRUE(threw);
  EXPECT_EQ(fs::file_size(path), old_size);  // the old file, untouched
  EXPECT_EQ(io::read_npy(path).shape, (Shape{4}));
  int entries = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir)) ++entries;
  EXPECT_EQ(entries, 1) << "a temporary file was left behind";
  // And a successful write replaces it whole.
  io::write_npy(path, small_tensor(6).view());
  EXPECT_EQ(io::read_npy(path).shape, (Shape{6}));
}

}  // namespace
}  // namespace attn::testing
