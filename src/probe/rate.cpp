#include "dln/probe/rate.hpp"

#include <cmath>
#include <limits>
#include <stdexcept>
#include <vector>

namespace dln {
namespace {

// Least-squares slope of y against x over a ring buffer of the last `window` points.
class Slope {
 public:
  void resize(int window) {
    x_.assign(static_cast<std::size_t>(window), 0.0);
    y_.assign(static_cast<std::size_t>(window), 0.0);
    count_ = next_ = 0;
  }
  void add(double x, double y) {
    x_[next_] = x;
    y_[next_] = y;
    next_ = (next_ + 1) % x_.size();
    if (count_ < x_.size()) ++count_;
  }
  double slope() const {
    if (count_ < 2) return std::numeric_limits<double>::quiet_NaN();
    double mx = 0, my = 0;
    for (std::size_t i = 0; i < count_; ++i) mx += x_[i], my += y_[i];
    mx /= static_cast<double>(count_);
    my /= static_cast<double>(count_);
    double sxy = 0, sxx = 0;
    for (std::size_t i = 0; i < count_; ++i) {
      sxy += (x_[i] - mx) * (y_[i] - my);
      sxx += (x_[i] - mx) * (x_[i] - mx);
    }
    return sxx > 0 ? sxy / sxx : std::numeric_limits<double>::quiet_NaN();
  }
  void reset() { count_ = next_ = 0; }
  // The window as one row: x values, y values, count, next.
  void save(StateMap& state, const std::string& key) const {
    const auto n = static_cast<Eigen::Index>(x_.size());
    Eigen::MatrixXd m(1, 2 * n + 2);
    for (Eigen::Index i = 0; i < n; ++i) m(0, i) = x_[i], m(0, n + i) = y_[i];
    m(0, 2 * n) = static_cast<double>(count_);
    m(0, 2 * n + 1) = static_cast<double>(next_);
    state[key] = m;
  }
  void load(const StateMap& state, const std::string& key) {
    const auto n = static_cast<Eigen::Index>(x_.size());
    const auto& m = state_entry(state, key, 1, 2 * n + 2);
    for (Eigen::Index i = 0; i < n; ++i) x_[i] = m(0, i), y_[i] = m(0, n + i);
    const double count = m(0, 2 * n), next = m(0, 2 * n + 1);
    if (!(count >= 0 && count <= static_cast<double>(n) && next >= 0 &&
          next < static_cast<double>(n) && count == std::floor(count) && next == std::floor(next)))
      throw std::runtime_error("the checkpoint's " + key + " window is out of range");
    count_ = static_cast<std::size_t>(count);
    next_ = static_cast<std::size_t>(next);
  }

 private:
  std::vector<double> x_, y_;
  std::size_t count_ = 0, next_ = 0;
};

// The error ||Y^ - Y||_F from the residual on the data path; on the stats path (l2) the
// distance to the least-squares fit, sqrt(2 (L - floor) / c), which is what converges (the two
// agree when the fit is exact).
double error_norm(StepCache& c) {
  const Problem& p = c.problem();
  if (!p.uses_stats()) return c.residual().norm();
  const double excess = std::max(c.loss() - p.loss_floor(), 0.0);
  return std::sqrt(2.0 * excess / p.loss().scale(p.samples()));
}

class Error final : public Probe {
 public:
  void columns(const LinearNet&, std::vector<std::string>& out) const override {
    out.push_back("error");
  }
  void measure(const StepInfo&, StepCache& c, std::span<double> out) override {
    out[0] = error_norm(c);
  }
};

class LogLogSlope final : public Probe {
 public:
  explicit LogLogSlope(int window) : window_(window) {}
  void columns(const LinearNet&, std::vector<std::string>& out) const override {
    out.push_back("loglog_slope.loss");
    out.push_back("loglog_slope.error");
  }
  void bind(const StepCache&) override {
    loss_.resize(window_);
    error_.resize(window_);
  }
  void measure(const StepInfo& info, StepCache& c, std::span<double> out) override {
    const double loss = c.loss();
    const double error = error_norm(c);
    if (info.step >= 1) {
      const double t = std::log(static_cast<double>(info.step));
      if (loss > 0 && std::isfinite(loss)) loss_.add(t, std::log(loss));
      if (error > 0 && std::isfinite(error)) error_.add(t, std::log(error));
    }
    out[0] = loss_.slope();
    out[1] = error_.slope();
  }
  void save(StateMap& state, const std::string& prefix) const override {
    loss_.save(state, prefix + "loss");
    error_.save(state, prefix + "error");
  }
  void load(const StateMap& state, const std::string& prefix) override {
    loss_.load(state, prefix + "loss");
    error_.load(state, prefix + "error");
  }

 private:
  int window_;
  Slope loss_, error_;
};

}  // namespace

std::unique_ptr<Probe> make_error_probe() {
  return std::make_unique<Error>();
}

std::unique_ptr<Probe> make_loglog_slope(int window) {
  return std::make_unique<LogLogSlope>(window);
}

}  // namespace dln
