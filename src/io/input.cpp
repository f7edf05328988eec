#include "dln/io/input.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <vector>

#include "dln/error.hpp"

namespace dln::io {
namespace {

// "12G", "512M", "4096": bytes; 0 for text that is not a size.
std::uint64_t parse_size(const std::string& text) {
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (end == text.c_str() || !(v > 0) || !std::isfinite(v)) return 0;
  double scale = 1.0;
  const std::string suffix(end);
  if (suffix == "K" || suffix == "k" || suffix == "KiB") {
    scale = 1024.0;
  } else if (suffix == "M" || suffix == "MiB") {
    scale = 1024.0 * 1024.0;
  } else if (suffix == "G" || suffix == "GiB") {
    scale = 1024.0 * 1024.0 * 1024.0;
  } else if (!suffix.empty()) {
    return 0;
  }
  const double bytes = v * scale;
  return bytes >= 1.8e19 ? std::numeric_limits<std::uint64_t>::max()
                         : static_cast<std::uint64_t>(bytes);
}

std::uint64_t machine_memory() {
  const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGESIZE);
  std::uint64_t bytes = pages > 0 && page > 0 ? mul_sat(static_cast<std::uint64_t>(pages),
                                                        static_cast<std::uint64_t>(page))
                                              : (std::uint64_t{8} << 30);
  // A cgroup (v2) limit below the machine's memory is the real one.
  std::ifstream cgroup("/sys/fs/cgroup/memory.max");
  std::string limit;
  if (cgroup >> limit && limit != "max")
    if (const std::uint64_t l = parse_size(limit); l > 0 && l < bytes) bytes = l;
  return bytes;
}

}  // namespace

std::uint64_t mul_sat(std::uint64_t a, std::uint64_t b) {
  if (a != 0 && b > std::numeric_limits<std::uint64_t>::max() / a)
    return std::numeric_limits<std::uint64_t>::max();
  return a * b;
}

std::uint64_t memory_budget() {
  static const std::uint64_t budget = [] {
    if (const char* env = std::getenv("DLN_MEMORY_BUDGET"))
      if (const std::uint64_t b = parse_size(env); b > 0) return b;
    return machine_memory() / 4 * 3;
  }();
  return budget;
}

std::string bytes_text(double bytes) {
  const char* units[] = {"bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  int u = 0;
  while (bytes >= 1024.0 && u < 6) {
    bytes /= 1024.0;
    ++u;
  }
  char out[64];
  std::snprintf(out, sizeof out, u == 0 ? "%.0f %s" : "%.3g %s", bytes, units[u]);
  return out;
}

void require_memory(double bytes, const std::string& what, const std::string& file,
                    const std::string& key) {
  const auto budget = static_cast<double>(memory_budget());
  if (bytes <= budget) return;
  throw InputError(file, 0, key,
                   what + " would need " + bytes_text(bytes) +
                       ", more than dln's memory budget of " + bytes_text(budget) +
                       " (DLN_MEMORY_BUDGET; docs/safety.md)");
}

InputFile::InputFile(std::string path) : path_(std::move(path)) {
  // O_NONBLOCK: opening a FIFO must not wait for a writer; the type is checked next.
  fd_ = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd_ < 0)
    throw InputError(path_, 0, "", "cannot open file (" + std::string(std::strerror(errno)) + ")");
  struct stat st {};
  if (::fstat(fd_, &st) != 0) {
    ::close(fd_);
    throw InputError(path_, 0, "", "cannot read file (" + std::string(std::strerror(errno)) + ")");
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd_);
    const char* what = S_ISDIR(st.st_mode)                          ? "a directory"
                       : S_ISFIFO(st.st_mode)                       ? "a FIFO (named pipe)"
                       : S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) ? "a device"
                       : S_ISSOCK(st.st_mode)                       ? "a socket"
                                                                    : "not a regular file";
    throw InputError(path_, 0, "", std::string("is ") + what + "; dln reads regular files only");
  }
  const int flags = ::fcntl(fd_, F_GETFL);
  if (flags >= 0) ::fcntl(fd_, F_SETFL, flags & ~O_NONBLOCK);
  size_ = static_cast<std::uint64_t>(st.st_size);
}

InputFile::~InputFile() {
  if (fd_ >= 0) ::close(fd_);
}

void InputFile::read_exact(void* out, std::size_t n) {
  auto* p = static_cast<char*>(out);
  while (n > 0) {
    const ssize_t got = ::read(fd_, p, n);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0)
      throw InputError(path_, 0, "", "read error (" + std::string(std::strerror(errno)) + ")");
    if (got == 0) throw InputError(path_, 0, "", "truncated: the file ended early");
    p += got;
    n -= static_cast<std::size_t>(got);
  }
}

void InputFile::seek(std::uint64_t offset) {
  if (offset > size_ || ::lseek(fd_, static_cast<off_t>(offset), SEEK_SET) < 0)
    throw InputError(path_, 0, "", "truncated: the file ended early");
}

std::string read_file(const std::string& path) {
  InputFile file(path);
  const std::uint64_t budget = memory_budget();
  if (!path.ends_with(".gz")) {
    require_memory(static_cast<double>(file.size()), "reading it", path);
    std::string out(static_cast<std::size_t>(file.size()), '\0');
    file.read_exact(out.data(), out.size());
    return out;
  }
  const int fd = ::dup(file.fd());
  gzFile gz = fd < 0 ? nullptr : gzdopen(fd, "rb");
  if (!gz) {
    if (fd >= 0) ::close(fd);
    throw InputError(path, 0, "", "cannot open file for decompression");
  }
  std::string out;
  std::vector<char> buffer(1 << 16);
  int n = 0;
  while ((n = gzread(gz, buffer.data(), static_cast<unsigned>(buffer.size()))) > 0) {
    if (out.size() + static_cast<std::size_t>(n) > budget) {
      gzclose(gz);
      throw InputError(path, 0, "",
                       "decompresses to more than dln's memory budget of " +
                           bytes_text(static_cast<double>(budget)) +
                           " (DLN_MEMORY_BUDGET; docs/safety.md)");
    }
    out.append(buffer.data(), static_cast<std::size_t>(n));
  }
  int code = Z_OK;
  const char* message = gzerror(gz, &code);
  std::string why = message ? message : "";
  if (why.starts_with("<fd:"))  // zlib names the descriptor; the path is named anyway
    why = why.substr(std::min(why.size(), why.find(": ") + 2));
  gzclose(gz);
  // A stream that stops before its end (a cut file) leaves Z_BUF_ERROR; corrupt data, Z_DATA_ERROR.
  if (n < 0 || (code != Z_OK && code != Z_STREAM_END))
    throw InputError(path, 0, "",
                     code == Z_BUF_ERROR ? "truncated gzip data (the stream ends early)"
                                         : "corrupt gzip data (" + why + ")");
  return out;
}

}  // namespace dln::io
