// The l_p loss L(Y_hat) = c * (1/p) * sum_{i,j} |Y_hat - Y|_{ij}^p with c = 1/n for reduction
// "mean" (n samples; outputs are summed, not averaged) and c = 1 for "sum". l2 is p = 2.
#pragma once

#include <Eigen/Core>

#include "dln/registry.hpp"

namespace dln {

const Registry& loss_registry();

enum class Reduction { kMean, kSum };

class LpLoss {
 public:
  // Requires p >= 1 (checked by the config layer).
  LpLoss(double p, Reduction reduction) : p_(p), reduction_(reduction) {}

  double p() const { return p_; }
  Reduction reduction() const { return reduction_; }
  bool is_l2() const { return p_ == 2.0; }
  // c above, for n samples.
  double scale(Eigen::Index samples) const {
    return reduction_ == Reduction::kMean ? 1.0 / static_cast<double>(samples) : 1.0;
  }

  // Value at residual R = Y_hat - Y (k x n); G receives dL/dY_hat = c |R|^{p-2} R (sign(R)
  // for p = 1, where 0 is used at R = 0). G must already have R's shape.
  double value_and_gradient(const Eigen::MatrixXd& R, Eigen::MatrixXd& G) const;
  double value(const Eigen::MatrixXd& R) const;

 private:
  double p_;
  Reduction reduction_;
};

}  // namespace dln
