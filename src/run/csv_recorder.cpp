#include "dln/run/csv_recorder.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <stdexcept>

namespace dln {

namespace {

// A regular file opened without following a symbolic link, as a stdio stream.
std::FILE* open_regular(const std::string& path, int flags, const char* mode) {
  const int fd = ::open(path.c_str(), flags | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0) return nullptr;
  struct stat st {};
  std::FILE* f = nullptr;
  if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) f = ::fdopen(fd, mode);
  if (!f) ::close(fd);
  return f;
}

}  // namespace

CsvRecorder::CsvRecorder(const std::string& path)
    : file_(open_regular(path, O_WRONLY | O_CREAT | O_TRUNC, "w")) {
  if (!file_) throw std::runtime_error("cannot write " + path);
}

CsvRecorder::CsvRecorder(const std::string& path, long offset)
    : file_(open_regular(path, O_RDWR, "r+")), header_(false) {
  if (!file_) throw std::runtime_error("cannot continue " + path);
  if (offset < 0 || ::ftruncate(::fileno(file_), offset) != 0 ||
      std::fseek(file_, 0, SEEK_SET) != 0)
    throw std::runtime_error("cannot continue " + path + " at its checkpoint");
  // The header it was started with, compared in begin().
  char buffer[4096];
  while (std::fgets(buffer, sizeof buffer, file_)) {
    written_header_ += buffer;
    if (written_header_.back() == '\n') break;
  }
  if (std::fseek(file_, offset, SEEK_SET) != 0)
    throw std::runtime_error("cannot continue " + path + " at its checkpoint");
}

long CsvRecorder::sync() {
  if (std::fflush(file_) != 0 || ::fsync(::fileno(file_)) != 0)
    throw std::runtime_error("cannot write metrics.csv");
  const long at = std::ftell(file_);
  if (at < 0) throw std::runtime_error("cannot write metrics.csv");
  return at;
}

CsvRecorder::~CsvRecorder() {
  if (file_) std::fclose(file_);
}

void CsvRecorder::begin(const std::vector<std::string>& columns) {
  std::string header = "step";
  for (const auto& c : columns) header += "," + c;
  header += "\n";
  if (header_)
    std::fputs(header.c_str(), file_);
  else if (header != written_header_)
    throw std::runtime_error("metrics.csv was started with other columns");
  // A double in shortest round-trip form takes at most 24 characters.
  line_.resize(32 * (columns.size() + 1) + 16);
}

void CsvRecorder::record(long step, std::span<const double> row) {
  char* out = fmt::format_to(line_.data(), "{}", step);
  for (double v : row) {
    if (std::isnan(v))
      out = fmt::format_to(out, ",nan");  // not "-nan": one spelling for every NaN
    else
      out = fmt::format_to(out, ",{}", v);
  }
  *out++ = '\n';
  std::fwrite(line_.data(), 1, static_cast<std::size_t>(out - line_.data()), file_);
}

void CsvRecorder::close() {
  // Made durable with its run directory (io::sync_tree) before summary.json is written.
  const bool ok = std::fflush(file_) == 0 && std::ferror(file_) == 0;
  if (std::fclose(file_) != 0 || !ok) {
    file_ = nullptr;
    throw std::runtime_error("cannot finish writing metrics.csv");
  }
  file_ = nullptr;
}

}  // namespace dln
