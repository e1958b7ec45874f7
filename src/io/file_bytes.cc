// SPDX-License-Identifier: MIT
// Whole-file reads and writes with POSIX calls, so that every failure can name its OS reason:
//   - reads take regular files only (a directory or a device would read garbage or forever);
//   - writes go to a temporary file beside the target, checked through write and close, then
//   renamed
//     over it: a failed write (full disk, no permission) leaves no partial file behind. A target
//     that exists and is not a regular file (/dev/null, a pipe) is written in place: renaming over
//     a device would replace it.
#include "io/internal/file_bytes.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "attn/error.h"

namespace attn::io::internal {

namespace {

std::string os_reason() { return std::strerror(errno); }

// Closes fd on every path out of a scope.
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
  int release() {
    const int f = fd;
    fd = -1;
    return f;
  }
};

void write_all(const char* fn, const std::string& path, int fd, std::span<const std::byte> bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0)
      fail<IoError>(fn, "cannot write '", path, "': ", n < 0 ? os_reason() : "no progress");
    done += static_cast<size_t>(n);
  }
}

void close_checked(const char* fn, const std::string& path, Fd& fd) {
  if (::close(fd.release()) != 0) fail<IoError>(fn, "cannot write '", path, "': ", os_reason());
}

}  // namespace

std::vector<std::byte> read_file_bytes(const char* fn, const std::string& path) {
  Fd fd{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (fd.fd < 0) fail<IoError>(fn, "cannot open '", path, "': ", os_reason());
  struct stat st {};
  if (::fstat(fd.fd, &st) != 0) fail<IoError>(fn, "cannot read '", path, "': ", os_reason());
  if (S_ISDIR(st.st_mode)) fail<IoError>(fn, "'", path, "' is a directory, not a file");
  if (!S_ISREG(st.st_mode)) fail<IoError>(fn, "'", path, "' is not a regular file");
  std::vector<std::byte> bytes(static_cast<size_t>(st.st_size));
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::read(fd.fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail<IoError>(fn, "cannot read '", path, "': ", os_reason());
    if (n == 0)
      fail<IoError>(fn, "'", path, "' ended after ", done, " of ", bytes.size(), " bytes");
    done += static_cast<size_t>(n);
  }
  return bytes;
}

void write_file_bytes(const char* fn, const std::string& path, std::span<const std::byte> bytes) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) fail<IoError>(fn, "cannot write '", path, "': it is a directory");
    if (!S_ISREG(st.st_mode)) {  // a device or a pipe: write in place
      Fd fd{::open(path.c_str(), O_WRONLY | O_CLOEXEC)};
      if (fd.fd < 0) fail<IoError>(fn, "cannot open '", path, "' for writing: ", os_reason());
      write_all(fn, path, fd.fd, bytes);
      close_checked(fn, path, fd);
      return;
    }
  }
  const std::string temp = path + ".tmp." + std::to_string(::getpid());
  Fd fd{::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)};
  if (fd.fd < 0) fail<IoError>(fn, "cannot open '", path, "' for writing: ", os_reason());
  try {
    write_all(fn, path, fd.fd, bytes);
    close_checked(fn, path, fd);
    if (::rename(temp.c_str(), path.c_str()) != 0)
      fail<IoError>(fn, "cannot write '", path, "': ", os_reason());
  } catch (...) {
    ::unlink(temp.c_str());
    throw;
  }
}

}  // namespace attn::io::internal
