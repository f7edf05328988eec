#include "dln/core/problem.hpp"

#include <Eigen/Eigenvalues>
#include <Eigen/QR>
#include <Eigen/SVD>
#include <cmath>

namespace dln {

Problem::Problem(std::shared_ptr<const Dataset> data, Loss loss, GradientPath path,
                 bool least_squares)
    : data_(std::move(data)), loss_(loss) {
  least_squares_ = least_squares && loss_.is_l2();
  stats_ = least_squares_ && path != GradientPath::kData;
  {
    // The modes of Sigma_yx = Y X^T / n (Saxe et al.): its singular triplets, for any loss.
    const auto n = static_cast<double>(data_->samples());
    sigma_yx_ = data_->Y * data_->X.transpose() / n;
    Eigen::JacobiSVD<Eigen::MatrixXd> svd(sigma_yx_, Eigen::ComputeThinU | Eigen::ComputeThinV);
    mode_u_ = svd.matrixU();
    mode_v_ = svd.matrixV();
    mode_s_ = svd.singularValues();
  }
  if (!least_squares_) return;

  const Eigen::MatrixXd& X = data_->X;
  const Eigen::MatrixXd& Y = data_->Y;
  const auto n = static_cast<double>(X.cols());
  // Minimum-norm least squares from the data themselves (not the normal equations, which
  // square the condition number): X^T W_*^T = Y^T by complete orthogonal decomposition.
  const Eigen::MatrixXd xt = X.transpose();
  Eigen::CompleteOrthogonalDecomposition<Eigen::MatrixXd> cod(xt);
  w_star_ = cod.solve(Y.transpose()).transpose();
  const double c = loss_.scale(X.cols());

  sigma_xx_ = X * X.transpose() / n;
  stats_scale_ = c * n;
  // Thin QR of X^T = Q R (Householder, backward stable): with F = R^T / sqrt(n) and
  // T = Y Q / sqrt(n), ||W X - Y||^2 = n ||W F - T||^2 + ||Y - Y Q Q^T||^2, whose last term is
  // read off the data once (docs/theory.md#sufficient-statistics). Unlike an eigenfactor of
  // Sigma_xx, R keeps the small directions of an ill-conditioned X to working precision.
  const Eigen::Index r = std::min(X.rows(), X.cols());
  const Eigen::HouseholderQR<Eigen::MatrixXd> qr(xt);
  Eigen::MatrixXd R = qr.matrixQR().topRows(r);
  for (Eigen::Index j = 0; j < r; ++j) R.col(j).tail(r - j - 1).setZero();
  const double root_n = std::sqrt(n);
  factor_ = R.transpose() / root_n;     // d x r
  factor_t_ = factor_.transpose();      // r x d: dL/dW_e is a product with it
  Eigen::MatrixXd qty = Y.transpose();  // n x k, then Q_full^T Y^T
  qty.applyOnTheLeft(qr.householderQ().adjoint());
  target_ = qty.topRows(r).transpose() / root_n;  // k x r
  offset_ = c * qty.bottomRows(X.cols() - r).squaredNorm() / 2.0;
  // The least-squares minimum: the offset alone when X has full rank (the second term is then
  // zero up to rounding); more when Q spans directions that X does not.
  floor_ = offset_ + 0.5 * stats_scale_ * (w_star_ * factor_ - target_).squaredNorm();
}

}  // namespace dln
