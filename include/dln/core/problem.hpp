// A training problem: data and loss, with what can be computed once before training. For the
// l2 loss this includes the sufficient statistics, so that a step costs nothing in n
// (docs/theory.md#sufficient-statistics).
#pragma once

#include <Eigen/Core>
#include <memory>

#include "dln/data/dataset.hpp"
#include "dln/loss/loss.hpp"

namespace dln {

enum class GradientPath {
  kAuto,   // stats for l2, data otherwise
  kStats,  // l2 only: Sigma_xx, Sigma_yx; a step costs O(k d^2), independent of n
  kData,   // through the residual: the data are touched twice per step, O(n d k)
};

class Problem {
 public:
  // `least_squares` false: no optimum and no sufficient statistics (the torch engine's
  // problems, which only read the data; they cost O(n d^2) to make, seconds on MNIST).
  Problem(std::shared_ptr<const Dataset> data, Loss loss, GradientPath path = GradientPath::kAuto,
          bool least_squares = true);

  const Dataset& data() const { return *data_; }
  const Loss& loss() const { return loss_; }
  bool uses_stats() const { return stats_; }
  Eigen::Index dim() const { return data_->dim(); }
  Eigen::Index targets() const { return data_->targets(); }
  Eigen::Index samples() const { return data_->samples(); }

  // l2 only: the minimum-norm least-squares end-to-end matrix W_* = argmin ||W X - Y||_F.
  bool has_optimum() const { return least_squares_; }
  const Eigen::MatrixXd& optimum() const { return w_star_; }

  // Stats path (l2 only): L(W_e) = a/2 ||W_e F - T||_F^2 + floor, dL/dW_e = a (W_e F - T) F^T,
  // with X^T = Q R (thin QR), F = R^T / sqrt(n) (F F^T = Sigma_xx = X X^T / n), T = Y Q / sqrt(n),
  // a = c n and offset = c/2 ||Y - Y Q Q^T||^2 (c: the loss scale); floor is the least-squares
  // minimum (the offset when X has full rank).
  const Eigen::MatrixXd& sigma_xx() const { return sigma_xx_; }
  // Sigma_yx = Y X^T / n and its SVD U diag(s) V^T (thin): mode i is (u_i, s_i, v_i).
  const Eigen::MatrixXd& sigma_yx() const { return sigma_yx_; }
  const Eigen::MatrixXd& mode_u() const { return mode_u_; }
  const Eigen::MatrixXd& mode_v() const { return mode_v_; }
  const Eigen::VectorXd& mode_s() const { return mode_s_; }
  const Eigen::MatrixXd& sigma_factor() const { return factor_; }      // F (d x min(d, n))
  const Eigen::MatrixXd& sigma_target() const { return target_; }      // T (k x min(d, n))
  const Eigen::MatrixXd& sigma_factor_t() const { return factor_t_; }  // F^T
  double stats_scale() const { return stats_scale_; }
  double loss_floor() const { return floor_; }
  double stats_offset() const { return offset_; }

 private:
  std::shared_ptr<const Dataset> data_;
  Loss loss_;
  bool stats_ = false;
  bool least_squares_ = false;
  Eigen::MatrixXd w_star_, sigma_xx_, sigma_yx_, factor_, factor_t_, target_, mode_u_, mode_v_;
  Eigen::VectorXd mode_s_;
  double stats_scale_ = 0.0, floor_ = 0.0, offset_ = 0.0;
};

}  // namespace dln
