#include "dln/core/problem.hpp"

#include <Eigen/Eigenvalues>
#include <Eigen/QR>
#include <Eigen/SVD>

namespace dln {

Problem::Problem(std::shared_ptr<const Dataset> data, Loss loss, GradientPath path)
    : data_(std::move(data)), loss_(loss) {
  stats_ = loss_.is_l2() && path != GradientPath::kData;
  {
    // The modes of Sigma_yx = Y X^T / n (Saxe et al.): its singular triplets, for any loss.
    const auto n = static_cast<double>(data_->samples());
    sigma_yx_ = data_->Y * data_->X.transpose() / n;
    Eigen::JacobiSVD<Eigen::MatrixXd> svd(sigma_yx_, Eigen::ComputeThinU | Eigen::ComputeThinV);
    mode_u_ = svd.matrixU();
    mode_v_ = svd.matrixV();
    mode_s_ = svd.singularValues();
  }
  if (!loss_.is_l2()) return;

  const Eigen::MatrixXd& X = data_->X;
  const Eigen::MatrixXd& Y = data_->Y;
  const auto n = static_cast<double>(X.cols());
  // Minimum-norm least squares from the data themselves (not the normal equations, which
  // square the condition number): X^T W_*^T = Y^T by complete orthogonal decomposition.
  const Eigen::MatrixXd xt = X.transpose();
  Eigen::CompleteOrthogonalDecomposition<Eigen::MatrixXd> cod(xt);
  w_star_ = cod.solve(Y.transpose()).transpose();
  const double c = loss_.scale(X.cols());
  floor_ = c * (w_star_ * X - Y).squaredNorm() / 2.0;

  sigma_xx_ = X * X.transpose() / n;
  stats_scale_ = c * n;
  // F = Q Lambda^{1/2}, so that ||D F||^2 = tr(D Sigma_xx D^T) is a sum of squares.
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eig(sigma_xx_);
  factor_ = eig.eigenvectors() * eig.eigenvalues().cwiseMax(0.0).cwiseSqrt().asDiagonal();
}

}  // namespace dln
