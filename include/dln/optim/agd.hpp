// Aligned Gradient Descent (AGD, Algorithm 1 of "Faster Gradient Descent in Deep Linear
// Networks: the Advantage of Depth") for scalar-output chains of width 1: the first layer w
// (1 x d) is followed by scalars theta_2 ... theta_L. Per step, with a = theta_2 ... theta_L:
//   w <- w - (eta / a^2) dL/dw                                  (then E = (I - eta/n X^T X) E)
//   theta_l <- theta_l - theta_l^2 / 2 dL/dtheta_l, l = 2 .. L, one at a time, each gradient
//   taken at the weights the previous sub-step left            (then E = (I - Y^ Y^T/2n) E)
// for the loss (1/n) sum 1/2 (y^ - y)^2 (docs/theory.md#aligned-gradient-descent).
//
// The cost is that of shallow GD plus O(L): the optimiser carries z = W_e M (M = Sigma_xx on
// the stats path, X on the data path), from which the next gradient follows without a pass
// over M, and a scalar layer only rescales z, |Y^|^2 and <Y^, Y>.
#pragma once

#include <Eigen/Core>
#include <functional>

#include "dln/optim/optimizer.hpp"

namespace dln {

class AlignedGd final : public Optimizer {
 public:
  // Called after sub-step s = 1 .. L of every step, with the net at Theta_{t + s/L}.
  std::function<void(int, const LinearNet&)> on_substep;

  // Weight decay omega: every layer's gradient g becomes g + omega W at its own rate.
  explicit AlignedGd(double decay = 0.0) : decay_(decay) {}

  // Throws std::invalid_argument unless the net is d -> 1 -> ... -> 1.
  void reset(const LinearNet& net, const Problem& problem) override;
  void step(StepCache& cache, LinearNet& net, double lr) override;
  void save(StateMap& state, const std::string& prefix) const override;
  void load(const StateMap& state, const std::string& prefix) override;

 private:
  Eigen::RowVectorXd z_;      // W_e M at the current weights (valid when carried_)
  Eigen::RowVectorXd grad_;   // dL/dW_e
  Eigen::RowVectorXd resid_;  // data path: Y^ - Y
  bool carried_ = false;
  double yy_ = 0.0;  // ||Y||^2 (stats path: the loss from q and r)
  double decay_ = 0.0;
};

// Why AGD cannot train this net on this problem (empty if it can).
std::string agd_unavailable(const std::vector<int>& widths, const Problem& problem);

}  // namespace dln
