#include "dln/loss/loss.hpp"

#include <cmath>

namespace dln {

const Registry& loss_registry() {
  static const Registry registry = {
      {"lp", "c (1/p) sum |y_hat - y|^p over samples and outputs, any real p >= 1", {"loss.p"}},
      {"l2", "lp with p = 2: c (1/2) ||W_e X - Y||_F^2", {}},
      {"logistic", "c sum log(1 + exp(-y y^)) over the margins, labels -1/+1", {}},
      {"exponential", "c sum exp(-y y^) over the margins, labels -1/+1", {}},
      {"cross_entropy",
       "c sum_i -sum_j y_ij log softmax(y^_i)_j: softmax cross-entropy on one-hot targets "
       "(torch engine)",
       {}},
  };
  return registry;
}

double logistic_loss(double m) {
  return m > 0 ? std::log1p(std::exp(-m)) : -m + std::log1p(std::exp(m));
}

double logistic_derivative(double m) {
  if (m > 0) {
    const double e = std::exp(-m);
    return -e / (1.0 + e);
  }
  return -1.0 / (1.0 + std::exp(m));
}

double Loss::value_and_gradient(const Eigen::MatrixXd& R, const Eigen::MatrixXd& Y,
                                Eigen::MatrixXd& G) const {
  const double c = scale(R.cols());
  return c * block_sum_and_gradient(R.data(), Y.data(), G.data(), R.size(), c);
}

double Loss::block_sum_and_gradient(const double* r, const double* y, double* g, Eigen::Index size,
                                    double c) const {
  double sum = 0.0;
  if (kind_ != LossKind::kLp) {
    const bool logistic = kind_ == LossKind::kLogistic;
    for (Eigen::Index i = 0; i < size; ++i) {
      const double m = y[i] * (r[i] + y[i]);  // y y^, with y^ = R + Y
      if (logistic) {
        sum += logistic_loss(m);
        g[i] = c * y[i] * logistic_derivative(m);
      } else {
        const double e = std::exp(-m);
        sum += e;
        g[i] = -c * y[i] * e;
      }
    }
    return sum;
  }
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
  return sum / p_;
}

void Loss::block_curvature(const double* r, const double* y, double* h, Eigen::Index size,
                           double c) const {
  if (kind_ != LossKind::kLp) {
    const bool logistic = kind_ == LossKind::kLogistic;
    for (Eigen::Index i = 0; i < size; ++i) {
      const double m = y[i] * (r[i] + y[i]);
      // logistic: l''(m) = s(m) s(-m) = e^{-|m|} / (1 + e^{-|m|})^2; exponential: e^{-m}.
      double second;
      if (logistic) {
        const double e = std::exp(-std::abs(m));
        second = e / ((1.0 + e) * (1.0 + e));
      } else {
        second = std::exp(-m);
      }
      h[i] = c * y[i] * y[i] * second;
    }
    return;
  }
  if (p_ == 2.0) {
    for (Eigen::Index i = 0; i < size; ++i) h[i] = c;
  } else if (p_ == 4.0) {
    for (Eigen::Index i = 0; i < size; ++i) h[i] = 3.0 * c * r[i] * r[i];
  } else {
    for (Eigen::Index i = 0; i < size; ++i)
      h[i] = c * (p_ - 1.0) * std::pow(std::abs(r[i]), p_ - 2.0);
  }
}

double Loss::value(const Eigen::MatrixXd& R, const Eigen::MatrixXd& Y) const {
  const double c = scale(R.cols());
  if (kind_ != LossKind::kLp) {
    double sum = 0.0;
    for (Eigen::Index i = 0; i < R.size(); ++i) {
      const double m = Y.data()[i] * (R.data()[i] + Y.data()[i]);
      sum += kind_ == LossKind::kLogistic ? logistic_loss(m) : std::exp(-m);
    }
    return c * sum;
  }
  if (p_ == 2.0) return c * R.squaredNorm() / 2.0;
  return c * R.array().abs().pow(p_).sum() / p_;
}

}  // namespace dln
