// Lanczos against Eigen's dense symmetric eigensolver, including the restarts that find every
// copy of a repeated eigenvalue (an invariant Krylov subspace).
#include <gtest/gtest.h>

#include <Eigen/Eigenvalues>
#include <algorithm>

#include "dln/core/hessian.hpp"
#include "dln/rng.hpp"

namespace dln {
namespace {

void apply_matrix(void* ctx, const double* in, double* out) {
  const auto& A = *static_cast<const Eigen::MatrixXd*>(ctx);
  Eigen::Map<Eigen::VectorXd>(out, A.rows()) =
      A * Eigen::Map<const Eigen::VectorXd>(in, A.cols());
}

Eigen::VectorXd top_dense(const Eigen::MatrixXd& A, int k) {
  Eigen::VectorXd all = Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd>(A).eigenvalues();
  std::sort(all.begin(), all.end(), std::greater<>());
  return all.head(k);
}

TEST(Lanczos, TopEigenvaluesOfARandomSymmetricMatrix) {
  // Indefinite, 60 x 60: the top 5 to the tolerance (residual bound 1e-12 of the largest).
  Rng rng(3);
  const Eigen::MatrixXd G = rng.normal_matrix(60, 60);
  const Eigen::MatrixXd A = (G + G.transpose()) / 2;
  Lanczos lanczos;
  lanczos.bind(60, {.k = 5, .iters = 60, .tol = 1e-12}, 7);
  const int first = lanczos.run(apply_matrix, const_cast<Eigen::MatrixXd*>(&A));
  EXPECT_TRUE(lanczos.converged());
  const Eigen::VectorXd want = top_dense(A, 5);
  EXPECT_LT((lanczos.values() - want).cwiseAbs().maxCoeff(), 1e-10 * std::abs(want(0)));
  // Warm-started on a slightly moved matrix: fewer products, the same accuracy.
  Eigen::MatrixXd B = A;
  B(0, 1) += 1e-4;
  B(1, 0) += 1e-4;
  const int second = lanczos.run(apply_matrix, &B);
  EXPECT_LT(second, first);
  EXPECT_LT((lanczos.values() - top_dense(B, 5)).cwiseAbs().maxCoeff(), 1e-10 * std::abs(want(0)));
}

TEST(Lanczos, RepeatedEigenvaluesAreFoundByRestarting) {
  // diag(5, 5, 5, 2, 2, 1, ...) in a random basis: a start vector's Krylov space has as many
  // dimensions as distinct eigenvalues; the restarts from vectors orthogonal to it find the
  // other copies of 5.
  Rng rng(4);
  const Eigen::MatrixXd Q = rng.orthonormal_columns(12, 12);
  Eigen::VectorXd d = Eigen::VectorXd::Ones(12);
  d.head(5) << 5, 5, 5, 2, 2;
  const Eigen::MatrixXd A = Q * d.asDiagonal() * Q.transpose();
  Lanczos lanczos;
  lanczos.bind(12, {.k = 4, .iters = 12, .tol = 1e-12}, 1);
  lanczos.run(apply_matrix, const_cast<Eigen::MatrixXd*>(&A));
  EXPECT_TRUE(lanczos.converged());
  Eigen::VectorXd want(4);
  want << 5, 5, 5, 2;
  EXPECT_LT((lanczos.values() - want).cwiseAbs().maxCoeff(), 1e-10);
}

}  // namespace
}  // namespace dln
