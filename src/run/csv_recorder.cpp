#include "dln/run/csv_recorder.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <stdexcept>

namespace dln {

CsvRecorder::CsvRecorder(const std::string& path) : file_(std::fopen(path.c_str(), "w")) {
  if (!file_) throw std::runtime_error("cannot write " + path);
}

CsvRecorder::CsvRecorder(const std::string& path, long offset)
    : file_(std::fopen(path.c_str(), "r+")), header_(false) {
  if (!file_) throw std::runtime_error("cannot continue " + path);
  if (offset < 0 || ::ftruncate(::fileno(file_), offset) != 0 ||
      std::fseek(file_, offset, SEEK_SET) != 0)
    throw std::runtime_error("cannot continue " + path + " at its checkpoint");
}

long CsvRecorder::sync() {
  if (std::fflush(file_) != 0 || ::fsync(::fileno(file_)) != 0)
    throw std::runtime_error("cannot write metrics.csv");
  return std::ftell(file_);
}

CsvRecorder::~CsvRecorder() {
  if (file_) std::fclose(file_);
}

void CsvRecorder::begin(const std::vector<std::string>& columns) {
  std::string header = "step";
  for (const auto& c : columns) header += "," + c;
  header += "\n";
  if (header_) std::fputs(header.c_str(), file_);
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
