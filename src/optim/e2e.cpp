#include "dln/optim/e2e.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace dln {

void EndToEndPreconditioner::resize(Eigen::Index k, Eigen::Index d, int depth) {
  depth_ = depth;
  svd_ = Eigen::JacobiSVD<Eigen::MatrixXd>(k, d, Eigen::ComputeFullU | Eigen::ComputeFullV);
  alpha_.resize(k);
  beta_.resize(d);
  rotated_.resize(k, d);
  tmp_.resize(k, d);
}

void EndToEndPreconditioner::apply(const Eigen::MatrixXd& W, const Eigen::MatrixXd& G,
                                   Eigen::MatrixXd& out) {
  // W = U diag(s) V^T with full U (k x k), V (d x d): (W W^T)^a = U diag(s_k^{2a}) U^T and
  // (W^T W)^b = V diag(s_d^{2b}) V^T, where s_k, s_d pad s with zeros. In the singular bases
  // the sum is a Hadamard product: U^T P V = (U^T G V) o K, K_jm = sum_i alpha_j^{N-i}
  // beta_m^{i-1}, alpha = s_k^{2/N}, beta = s_d^{2/N}.
  svd_.compute(W);
  const Eigen::VectorXd& s = svd_.singularValues();
  const double power = 2.0 / depth_;
  // Singular values at round-off level are zeros of a rank-deficient W: fractional powers
  // would blow them up ((1e-16)^{2/5} = 4e-7), so they are set to 0.
  const double cutoff = s.size() > 0 ? s(0) * 4.0 * std::numeric_limits<double>::epsilon() *
                                           static_cast<double>(std::max(W.rows(), W.cols()))
                                     : 0.0;
  alpha_.setZero();
  beta_.setZero();
  for (Eigen::Index j = 0; j < s.size(); ++j) {
    const double a = s(j) <= cutoff ? 0.0 : std::pow(s(j), power);
    alpha_(j) = a;
    beta_(j) = a;
  }
  const auto& U = svd_.matrixU();
  const auto& V = svd_.matrixV();
  tmp_.noalias() = U.transpose() * G;
  rotated_.noalias() = tmp_ * V;
  for (Eigen::Index m = 0; m < rotated_.cols(); ++m) {
    for (Eigen::Index j = 0; j < rotated_.rows(); ++j) {
      // sum_{i=1..N} alpha^{N-i} beta^{i-1}; integer powers, so 0^0 = 1.
      double k_jm = 0.0, a_pow = 1.0;
      for (int i = depth_; i >= 1; --i) {  // a_pow = alpha^{N-i}
        double b_pow = 1.0;
        for (int e = 1; e < i; ++e) b_pow *= beta_(m);
        k_jm += a_pow * b_pow;
        a_pow *= alpha_(j);
      }
      rotated_(j, m) *= k_jm;
    }
  }
  tmp_.noalias() = U * rotated_;
  out.noalias() = tmp_ * V.transpose();
}

}  // namespace dln
