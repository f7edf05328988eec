#include "dln/run/progress.hpp"

#include <fmt/format.h>

#include <atomic>
#include <cmath>
#include <cstdio>

namespace dln {

namespace {
std::atomic<ProgressMode>& mode_storage() {
  static std::atomic<ProgressMode> mode{ProgressMode::kOff};
  return mode;
}
}  // namespace

void set_progress_mode(ProgressMode mode) {
  mode_storage() = mode;
}

ProgressMode progress_mode() {
  return mode_storage();
}

std::string duration_text(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0 || seconds > 3.6e9) return "?";
  const auto s = static_cast<long long>(std::llround(seconds));
  if (s < 60) return fmt::format("{} s", s);
  if (s < 3600) return fmt::format("{} min {:02} s", s / 60, s % 60);
  return fmt::format("{} h {:02} min", s / 3600, (s % 3600) / 60);
}

ProgressLine::~ProgressLine() {
  finish();
}

ProgressLine::ProgressLine(ProgressMode mode)
    : mode_(mode == ProgressMode::kQuiet ? ProgressMode::kOff : mode),
      last_(std::chrono::steady_clock::now()) {}

bool ProgressLine::due() const {
  if (mode_ == ProgressMode::kOff) return false;
  const double since =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - last_).count();
  return since >= (mode_ == ProgressMode::kTerminal ? 0.25 : 10.0);
}

void ProgressLine::show(const std::string& text) {
  if (mode_ == ProgressMode::kOff) return;
  last_ = std::chrono::steady_clock::now();
  if (mode_ == ProgressMode::kTerminal) {
    // Rewrite the line; pad over the end of a longer earlier one.
    const std::size_t pad = width_ > text.size() ? width_ - text.size() : 0;
    std::fprintf(stderr, "\r%s%*s", text.c_str(), static_cast<int>(pad), "");
    width_ = text.size();
  } else {
    std::fprintf(stderr, "%s\n", text.c_str());
  }
  std::fflush(stderr);
  shown_ = true;
}

void ProgressLine::finish() {
  if (mode_ == ProgressMode::kTerminal && shown_) {
    std::fprintf(stderr, "\r%*s\r", static_cast<int>(width_), "");
    std::fflush(stderr);
  }
  shown_ = false;
}

}  // namespace dln
