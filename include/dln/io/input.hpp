// Reading what users hand dln: regular files only (a directory, device, FIFO or socket is refused
// by name, without blocking on it), and every size checked against the file and against the
// memory budget before anything is allocated (docs/safety.md).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace dln::io {

// The bytes dln lets one run's data and model take: DLN_MEMORY_BUDGET when set (bytes, or with a
// K, M or G suffix), else three quarters of the machine's memory or of the cgroup's limit.
std::uint64_t memory_budget();

// "1.5 GiB" and the like.
std::string bytes_text(double bytes);

// Refuses (InputError at `file` and `key`) to go on when `what` needs more than the budget:
// "<what> would need 7.5 GiB, more than dln's memory budget of 18 GiB".
void require_memory(double bytes, const std::string& what, const std::string& file,
                    const std::string& key = "");

// a * b, or UINT64_MAX when that overflows (for sizes read from files).
std::uint64_t mul_sat(std::uint64_t a, std::uint64_t b);

// A regular file opened for reading; InputError naming it for anything else.
class InputFile {
 public:
  explicit InputFile(std::string path);
  ~InputFile();
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;

  const std::string& path() const { return path_; }
  std::uint64_t size() const { return size_; }
  int fd() const { return fd_; }
  // Reads exactly n bytes from the current position; InputError "truncated" when the file ends.
  void read_exact(void* out, std::size_t n);
  void seek(std::uint64_t offset);

 private:
  std::string path_;
  int fd_ = -1;
  std::uint64_t size_ = 0;
};

// A whole regular file (decompressed when its name ends in ".gz": a truncated or corrupt stream
// is an InputError, and so is output beyond the memory budget).
std::string read_file(const std::string& path);

}  // namespace dln::io
