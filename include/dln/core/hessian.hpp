// The Hessian of the training loss of a linear chain, applied to vectors exactly through the
// step cache's products (no finite differences, no dense matrix), and its top eigenvalues by
// Lanczos, warm-started from the previous call's Ritz vectors (docs/theory.md#sharpness).
#pragma once

#include <Eigen/Core>
#include <cstdint>
#include <string>
#include <vector>

#include "dln/core/state_map.hpp"

namespace dln {

class StepCache;
class Problem;
class LinearNet;

struct HessianOptions {
  int k = 1;           // eigenvalues wanted, largest first (record.hessian_k)
  int iters = 100;     // Lanczos vectors kept: iterations at most (record.hessian_iters)
  double tol = 1e-10;  // stop when every ||H y_i - theta_i y_i|| <= tol |theta_1|
};

// The k largest eigenvalues of a symmetric operator on R^dim by Lanczos with full
// reorthogonalisation. Ritz values come from the tridiagonal matrix by bisection on Sturm
// counts and their residuals from inverse iteration, so that a call allocates nothing; the
// next call starts from the sum of this call's Ritz vectors.
class Lanczos {
 public:
  using Apply = void (*)(void* ctx, const double* in, double* out);
  void bind(Eigen::Index dim, const HessianOptions& options, std::uint64_t seed);
  // Runs to convergence (or the iteration limit); returns the number of applications.
  int run(Apply apply, void* ctx);
  // min(k, dim) values, descending.
  const Eigen::VectorXd& values() const { return values_; }
  // Whether the last run met the tolerance (else its values are the best Ritz values found).
  bool converged() const { return converged_; }
  Eigen::Index dim() const { return dim_; }
  // The warm start, for checkpoints.
  void save(StateMap& state, const std::string& prefix) const;
  void load(const StateMap& state, const std::string& prefix);

 private:
  // Top `count` eigenvalues of the block [first, end) of the tridiagonal (alpha_, beta_) into
  // theta_, the last components of their unit eigenvectors into last_ (and, when vectors is
  // set, the eigenvectors into s_).
  void ritz(int first, int end, int count, bool vectors);
  // A unit vector drawn from a generator seeded by the bind seed and `salt` (no state carried
  // from one draw to the next, so a resumed run draws what an uninterrupted one would).
  void random_unit(Eigen::Ref<Eigen::VectorXd> out, std::uint64_t salt) const;

  Eigen::Index dim_ = 0;
  int k_ = 1, m_ = 1;
  double tol_ = 1e-10;
  Eigen::MatrixXd Q_;             // dim x (m + 1): the Lanczos vectors
  Eigen::VectorXd w_, h_;         // the new vector; projections on Q
  Eigen::VectorXd alpha_, beta_;  // the tridiagonal: diagonal, off-diagonal
  Eigen::VectorXd theta_, last_;  // Ritz values and last components
  Eigen::VectorXd checked_;       // the top k before the last restart
  Eigen::MatrixXd s_;             // j x k eigenvectors of the tridiagonal
  Eigen::VectorXd tri_d_, tri_u_, tri_u2_, tri_l_, tri_x_;  // inverse iteration work
  Eigen::MatrixXd ritz_;  // dim x k: the last Ritz vectors (the warm start)
  Eigen::VectorXd values_;
  bool warm_ = false, converged_ = false;
  std::uint64_t seed_ = 0;
};

// H(v) for the loss L(W_1, ..., W_L) = l(W_L ... W_1), v = (V_1, ..., V_L) flattened layer by
// layer (each column-major), and the Hessian of l with respect to W_e.
class Hessian {
 public:
  void bind(const Problem& problem, const LinearNet& net, const HessianOptions& options,
            std::uint64_t seed);
  Eigen::Index parameters() const { return offsets_.back(); }
  // out = H v at the cache's weights (v and out of length parameters()).
  void apply(StepCache& cache, const double* v, double* out);
  // out = H_e d (the Hessian of l at W_e applied to the k x d matrix d, flattened).
  void apply_e2e(StepCache& cache, const double* d, double* out);
  // The top eigenvalues of H (min(k, parameters())) and the top eigenvalue of H_e; each call
  // runs Lanczos (the step cache keeps the result for a step).
  const Eigen::VectorXd& top(StepCache& cache);
  double top_e2e(StepCache& cache);
  // Hessian-vector products the last top() took.
  int last_products() const { return products_; }
  void save(StateMap& state, const std::string& prefix) const;
  void load(const StateMap& state, const std::string& prefix);

 private:
  // Binds the cache and takes the loss's second derivatives at its weights (data path).
  void prepare(StepCache& cache);
  void product(const double* v, double* out);
  void product_e2e(const double* d, double* out);

  const Problem* problem_ = nullptr;
  std::vector<Eigen::Index> offsets_;  // layer l's block starts at offsets_[l - 1]
  std::vector<Eigen::MatrixXd> dP_;    // dP_l, l = 1..L (index l - 1): n_l x d
  std::vector<Eigen::MatrixXd> dS_;    // dS_l, l = 1..L-1 (index l): k x n_l
  // Per layer l (index l - 1): n_l x d (B_, U_), k x n_{l-1} (C_) and n_l x n_{l-1} (T_)
  // temporaries.
  std::vector<Eigen::MatrixXd> B_, U_, C_, T_;
  Eigen::MatrixXd he_, dx_, curv_;  // H_e[dW_e] (k x d); data path: D X, l'' (k x n)
  StepCache* cache_ = nullptr;      // during top(), for the callbacks
  Lanczos layers_, e2e_;
  bool e2e_constant_ = false;  // l2: H_e = a (I_k x Sigma_xx) whatever W_e
  double e2e_value_ = 0.0;
  int products_ = 0;
};

}  // namespace dln
