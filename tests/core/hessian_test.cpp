// Lanczos against Eigen's dense symmetric eigensolver, including the restarts that find every
// copy of a repeated eigenvalue (an invariant Krylov subspace).
#include "dln/core/hessian.hpp"

#include <gtest/gtest.h>

#include <Eigen/Eigenvalues>
#include <algorithm>

#include "dln/rng.hpp"

namespace dln {
namespace {

void apply_matrix(void* ctx, const double* in, double* out) {
  const auto& A = *static_cast<const Eigen::MatrixXd*>(ctx);
  Eigen::Map<Eigen::VectorXd>(out, A.rows()) = A * Eigen::Map<const Eigen::VectorXd>(in, A.cols());
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
  lanczos.run(apply_matrix, const_cast<Eigen::MatrixXd*>(&A));
  EXPECT_TRUE(lanczos.converged());
  const Eigen::VectorXd want = top_dense(A, 5);
  EXPECT_LT((lanczos.values() - want).cwiseAbs().maxCoeff(), 1e-10 * std::abs(want(0)));
  // The top one alone, warm-started on a slightly moved matrix: fewer products, the same
  // accuracy.
  Lanczos top;
  top.bind(60, {.k = 1, .iters = 60, .tol = 1e-12}, 7);
  const int cold = top.run(apply_matrix, const_cast<Eigen::MatrixXd*>(&A));
  Eigen::MatrixXd B = A;
  B(0, 1) += 1e-4;
  B(1, 0) += 1e-4;
  const int warm = top.run(apply_matrix, &B);
  EXPECT_LT(warm, cold);
  EXPECT_LT(std::abs(top.values()(0) - top_dense(B, 1)(0)), 1e-10 * std::abs(want(0)));
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

TEST(Lanczos, ADoubledTopEigenvalueIsListedTwiceAmongFewerThanTheDistinctOnes) {
  // {5, 5, 3, 2, 1.9, ..., 0.1} with k = 2: the first Krylov space converges to (5, 3); the
  // check from a restart orthogonal to it must find the second 5 (each of several seeds).
  for (std::uint64_t seed = 1; seed <= 6; ++seed) {
    Rng rng(seed + 10);
    const Eigen::MatrixXd Q = rng.orthonormal_columns(30, 30);
    Eigen::VectorXd d(30);
    d(0) = 5;
    d(1) = 5;
    d(2) = 3;
    for (int i = 3; i < 30; ++i) d(i) = 2.0 - 0.07 * (i - 3);
    const Eigen::MatrixXd A = Q * d.asDiagonal() * Q.transpose();
    Lanczos lanczos;
    lanczos.bind(30, {.k = 2, .iters = 30, .tol = 1e-12}, seed);
    lanczos.run(apply_matrix, const_cast<Eigen::MatrixXd*>(&A));
    EXPECT_TRUE(lanczos.converged()) << seed;
    EXPECT_LT(std::abs(lanczos.values()(0) - 5.0), 1e-10) << seed;
    EXPECT_LT(std::abs(lanczos.values()(1) - 5.0), 1e-10) << seed;
  }
}

}  // namespace
}  // namespace dln
