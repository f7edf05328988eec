// Progress while a run or a sweep works: one line on stderr, rewritten in place on a terminal
// or printed now and then (--progress, for logs and batch jobs). Never in the metrics files.
#pragma once

#include <chrono>
#include <string>

namespace dln {

// kOff: no progress line (notices such as a resumed run still go to stderr); kQuiet: nothing
// but errors; kTerminal: one line rewritten in place; kLines: a plain line now and then.
enum class ProgressMode { kOff, kQuiet, kTerminal, kLines };

// The mode for this process (the command line sets it; the library's default is off).
void set_progress_mode(ProgressMode mode);
ProgressMode progress_mode();

// Durations as "42 s", "3 min 05 s", "2 h 14 min".
std::string duration_text(double seconds);

class ProgressLine {
 public:
  explicit ProgressLine(ProgressMode mode = progress_mode());
  ~ProgressLine();
  ProgressLine(const ProgressLine&) = delete;
  ProgressLine& operator=(const ProgressLine&) = delete;

  bool on() const { return mode_ != ProgressMode::kOff; }
  bool lines() const { return mode_ == ProgressMode::kLines; }
  // Whether a new line is due (terminal: 4 a second; lines: every 10 s).
  bool due() const;
  // Shows `text` (the caller checked due(), or it is the last word).
  void show(const std::string& text);
  // Ends the line on a terminal (the next output starts on a line of its own).
  void finish();

 private:
  ProgressMode mode_;
  std::chrono::steady_clock::time_point last_;
  bool shown_ = false;
  std::size_t width_ = 0;
};

}  // namespace dln
