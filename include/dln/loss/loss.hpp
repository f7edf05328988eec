// Losses of the predictions Y^ = W_e X against the targets Y, with c = 1/n for reduction "mean"
// (n samples; outputs are summed, not averaged) and c = 1 for "sum":
//   lp:          L = c (1/p) sum_{ij} |Y^ - Y|_{ij}^p          (l2 is p = 2)
//   logistic:    L = c sum_{ij} log(1 + exp(-m_ij)),  m = Y o Y^ the margins (labels -1/+1)
//   exponential: L = c sum_{ij} exp(-m_ij)
// (docs/theory.md#losses).
#pragma once

#include <Eigen/Core>

#include "dln/registry.hpp"

namespace dln {

const Registry& loss_registry();

enum class Reduction { kMean, kSum };
enum class LossKind { kLp, kLogistic, kExponential };

class Loss {
 public:
  // The l_p loss; requires p >= 1 (checked by the config layer).
  Loss(double p, Reduction reduction) : p_(p), reduction_(reduction) {}
  // A margin loss (logistic or exponential).
  static Loss margin(LossKind kind, Reduction reduction) {
    Loss loss(2.0, reduction);
    loss.kind_ = kind;
    return loss;
  }

  LossKind kind() const { return kind_; }
  bool is_margin() const { return kind_ != LossKind::kLp; }
  double p() const { return p_; }
  Reduction reduction() const { return reduction_; }
  bool is_l2() const { return kind_ == LossKind::kLp && p_ == 2.0; }
  // c above, for n samples.
  double scale(Eigen::Index samples) const {
    return reduction_ == Reduction::kMean ? 1.0 / static_cast<double>(samples) : 1.0;
  }

  // Value at residual R = Y^ - Y (k x n) with targets Y; G receives dL/dY^ (lp: c |R|^{p-2} R,
  // sign(R) for p = 1 with 0 at R = 0; margin losses: c Y l'(m)). G must have R's shape. The
  // margin losses are evaluated without overflow for any finite margin the logistic loss
  // meets (log(1 + e^{-m}) as m + log(1 + e^{-m}) branches); the exponential loss is e^{-m},
  // which is infinite below m = -709.
  double value_and_gradient(const Eigen::MatrixXd& R, const Eigen::MatrixXd& Y,
                            Eigen::MatrixXd& G) const;
  double value(const Eigen::MatrixXd& R, const Eigen::MatrixXd& Y) const;
  // The same on `size` contiguous entries (a block of whole samples): writes G = c dl/dr and
  // returns the block's sum of l (the loss is c times the sum over all blocks).
  double block_sum_and_gradient(const double* r, const double* y, double* g, Eigen::Index size,
                                double c) const;
  // The second derivatives c d^2l/dr^2 on `size` entries (the Hessian of the loss in Y^ is
  // diagonal): lp c (p - 1) |r|^{p-2}, margin losses c y^2 l''(m). Unbounded at r = 0 for
  // p < 2, which the sharpness probes refuse.
  void block_curvature(const double* r, const double* y, double* h, Eigen::Index size,
                       double c) const;

 private:
  double p_;
  Reduction reduction_;
  LossKind kind_ = LossKind::kLp;
};

// log(1 + e^{-m}) and its derivative -1 / (1 + e^{m}), stable for every m.
double logistic_loss(double m);
double logistic_derivative(double m);

}  // namespace dln
