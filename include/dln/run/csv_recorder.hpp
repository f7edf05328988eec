// metrics.csv, streamed row by row: the header at begin(), then one preformatted line per
// record() with no allocation (numbers in shortest round-trip form).
#pragma once

#include <cstdio>
#include <string>
#include <vector>

#include "dln/run/trainer.hpp"

namespace dln {

class CsvRecorder final : public Recorder {
 public:
  explicit CsvRecorder(const std::string& path);
  // Continues a file written up to byte `offset` (a checkpoint's): what follows it is cut off,
  // and begin() writes no header.
  CsvRecorder(const std::string& path, long offset);
  ~CsvRecorder() override;
  CsvRecorder(const CsvRecorder&) = delete;
  CsvRecorder& operator=(const CsvRecorder&) = delete;

  void begin(const std::vector<std::string>& columns) override;
  void record(long step, std::span<const double> row) override;
  // Flushes and closes; throws if the file could not be written completely.
  void close();
  // Flushes the rows written so far to the disk (fsync); returns the file's length.
  long sync();

 private:
  std::FILE* file_;
  std::vector<char> line_;
  bool header_ = true;
  std::string written_header_;  // a continued file's first line
};

}  // namespace dln
