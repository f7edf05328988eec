#include "dln/loss/lp.hpp"

#include <cmath>

namespace dln {

const Registry& loss_registry() {
  static const Registry registry = {
      {"lp", "c (1/p) sum |y_hat - y|^p over samples and outputs, any real p >= 1", {"loss.p"}},
      {"l2", "lp with p = 2: c (1/2) ||W_e X - Y||_F^2", {}},
  };
  return registry;
}

double LpLoss::value_and_gradient(const Eigen::MatrixXd& R, Eigen::MatrixXd& G) const {
  const double c = scale(R.cols());
  const Eigen::Index size = R.size();
  const double* r = R.data();
  double* g = G.data();
  double sum = 0.0;
  if (p_ == 2.0) {
    for (Eigen::Index i = 0; i < size; ++i) {
      sum += r[i] * r[i];
      g[i] = c * r[i];
    }
  } else if (p_ == 4.0) {
    for (Eigen::Index i = 0; i < size; ++i) {
      const double r2 = r[i] * r[i];
      sum += r2 * r2;
      g[i] = c * r2 * r[i];
    }
  } else if (p_ == 1.0) {
    for (Eigen::Index i = 0; i < size; ++i) {
      sum += std::abs(r[i]);
      g[i] = c * static_cast<double>((r[i] > 0) - (r[i] < 0));
    }
  } else {
    for (Eigen::Index i = 0; i < size; ++i) {
      const double a = std::abs(r[i]);
      const double a_pm1 = std::pow(a, p_ - 1.0);
      sum += a_pm1 * a;
      g[i] = c * std::copysign(a_pm1, r[i]);
    }
  }
  return c * sum / p_;
}

double LpLoss::value(const Eigen::MatrixXd& R) const {
  const double c = scale(R.cols());
  if (p_ == 2.0) return c * R.squaredNorm() / 2.0;
  return c * R.array().abs().pow(p_).sum() / p_;
}

}  // namespace dln
