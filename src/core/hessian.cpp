#include "dln/core/hessian.hpp"

#include <Eigen/Eigenvalues>
#include <algorithm>
#include <cmath>
#include <limits>
#include <random>

#include "dln/core/multiply.hpp"
#include "dln/core/step_cache.hpp"

namespace dln {
namespace {

constexpr double kEps = std::numeric_limits<double>::epsilon();

// The number of eigenvalues below x of the symmetric tridiagonal matrix with diagonal a and
// off-diagonal b (n x n), from the signs of the pivots of T - x I (Sturm).
int count_below(const double* a, const double* b, int n, double x, double tiny) {
  int count = 0;
  double d = a[0] - x;
  for (int i = 0;; ++i) {
    if (d == 0.0) d = -tiny;
    count += d < 0.0;
    if (i + 1 == n) break;
    d = a[i + 1] - x - b[i] * b[i] / d;
  }
  return count;
}

}  // namespace

void Lanczos::bind(Eigen::Index dim, const HessianOptions& options, std::uint64_t seed) {
  dim_ = dim;
  m_ = static_cast<int>(std::min<Eigen::Index>(std::max(options.iters, options.k), dim));
  k_ = static_cast<int>(std::min<Eigen::Index>(options.k, dim));
  tol_ = options.tol;
  Q_.setZero(dim, m_ + 1);
  w_.setZero(dim);
  h_.setZero(m_ + 1);
  alpha_.setZero(m_);
  beta_.setZero(m_);
  theta_.setZero(k_);
  checked_.setZero(k_);
  last_.setZero(k_);
  s_.setZero(m_, k_);
  for (auto* v : {&tri_d_, &tri_u_, &tri_u2_, &tri_l_, &tri_x_}) v->setZero(m_);
  ritz_.setZero(dim, k_);
  values_.setZero(k_);
  warm_ = false;
  converged_ = false;
  seed_ = seed;
}

void Lanczos::random_unit(Eigen::Ref<Eigen::VectorXd> out, std::uint64_t salt) const {
  std::mt19937_64 rng(seed_ ^ (0x9e3779b97f4a7c15ULL * (salt + 1)));
  std::normal_distribution<double> normal;
  for (Eigen::Index i = 0; i < out.size(); ++i) out(i) = normal(rng);
  out.normalize();
}

void Lanczos::save(StateMap& state, const std::string& prefix) const {
  state[prefix + "ritz"] = ritz_;
  put_scalar(state, prefix + "warm", warm_ ? 1.0 : 0.0);
}

void Lanczos::load(const StateMap& state, const std::string& prefix) {
  ritz_ = state_entry(state, prefix + "ritz", dim_, k_);
  warm_ = state_scalar(state, prefix + "warm") != 0.0;
}

void Lanczos::ritz(int first, int end, int count, bool vectors) {
  const int j = end - first;
  const double* a = alpha_.data() + first;
  const double* b = beta_.data() + first;
  // Gershgorin bounds of the spectrum.
  double lo = a[0], hi = a[0];
  for (int i = 0; i < j; ++i) {
    const double r = (i > 0 ? std::abs(b[i - 1]) : 0.0) + (i + 1 < j ? std::abs(b[i]) : 0.0);
    lo = std::min(lo, a[i] - r);
    hi = std::max(hi, a[i] + r);
  }
  const double scale = std::max(std::abs(lo), std::abs(hi));
  const double tiny = std::max(scale * kEps * kEps, std::numeric_limits<double>::min());
  for (int i = 0; i < count; ++i) {
    // The (i+1)-th largest: the eigenvalue with j - 1 - i others below it.
    const int below = j - 1 - i;
    double l = lo - tiny, h = hi + tiny;
    for (int it = 0; it < 200 && h - l > 2.0 * kEps * std::max(std::abs(l), std::abs(h)) + tiny;
         ++it) {
      const double mid = 0.5 * (l + h);
      if (count_below(a, b, j, mid, tiny) > below)
        h = mid;
      else
        l = mid;
    }
    theta_(i) = 0.5 * (l + h);
    // Its eigenvector by inverse iteration: two solves of (T - theta I) x = x with partial
    // pivoting (the tridiagonal elimination of LAPACK's gtsv), from a vector of ones.
    double* x = tri_x_.data();
    for (int r = 0; r < j; ++r) x[r] = 1.0;
    for (int pass = 0; pass < 2; ++pass) {
      double* d = tri_d_.data();    // diagonal, then U's diagonal
      double* u = tri_u_.data();    // super-diagonal, then U's first super-diagonal
      double* u2 = tri_u2_.data();  // U's second super-diagonal
      double* l2 = tri_l_.data();   // sub-diagonal
      for (int r = 0; r < j; ++r) d[r] = a[r] - theta_(i);
      for (int r = 0; r + 1 < j; ++r) u[r] = l2[r] = b[r];
      for (int r = 0; r + 1 < j; ++r) {
        u2[r] = 0.0;
        if (std::abs(d[r]) >= std::abs(l2[r])) {
          if (d[r] == 0.0) d[r] = tiny;
          const double f = l2[r] / d[r];
          d[r + 1] -= f * u[r];
          x[r + 1] -= f * x[r];
        } else {  // swap rows r and r + 1
          const double f = d[r] / l2[r];
          d[r] = l2[r];
          const double t = d[r + 1];
          d[r + 1] = u[r] - f * t;
          if (r + 2 < j) {
            u2[r] = u[r + 1];
            u[r + 1] = -f * u2[r];
          }
          u[r] = t;
          const double xr = x[r];
          x[r] = x[r + 1];
          x[r + 1] = xr - f * x[r + 1];
        }
      }
      if (d[j - 1] == 0.0) d[j - 1] = tiny;
      x[j - 1] /= d[j - 1];
      if (j > 1) x[j - 2] = (x[j - 2] - u[j - 2] * x[j - 1]) / d[j - 2];
      for (int r = j - 3; r >= 0; --r) x[r] = (x[r] - u[r] * x[r + 1] - u2[r] * x[r + 2]) / d[r];
      double norm = 0.0;
      for (int r = 0; r < j; ++r) norm += x[r] * x[r];
      norm = std::sqrt(norm);
      if (!(norm > 0.0) || !std::isfinite(norm)) {
        for (int r = 0; r < j; ++r) x[r] = r + 1 == j ? 1.0 : 0.0;
        break;
      }
      for (int r = 0; r < j; ++r) x[r] /= norm;
    }
    last_(i) = x[j - 1];
    if (vectors)
      for (int r = 0; r < j; ++r) s_(r, i) = x[r];
  }
}

int Lanczos::run(Apply apply, void* ctx) {
  auto q0 = Q_.col(0);
  if (warm_) {
    q0 = ritz_.rowwise().sum();
    if (!q0.allFinite() || !(q0.norm() > 0.0)) random_unit(q0, 0);
    q0.normalize();
  } else {
    random_unit(q0, 0);
  }
  converged_ = false;
  int j = 0;  // the tridiagonal's size
  double scale = 0.0;
  // With k > 1, converged Ritz values are checked by restarting from a direction orthogonal to
  // the Krylov space so far: a single start vector spans one copy of each eigenspace, and an
  // eigenvalue repeated among the top k shows up only from the restarts. After a restart the
  // new block's own top Ritz pair must converge too; the run ends when it has and the top k
  // did not change.
  bool checking = false;
  int block = 0;  // where the current block of the tridiagonal starts
  // Continues from a fresh random direction orthogonal to Q's first j columns, with beta = 0
  // in the tridiagonal; false when there is none (the whole space is spanned).
  auto restart = [&]() {
    random_unit(w_, static_cast<std::uint64_t>(j));
    for (int pass = 0; pass < 2; ++pass) {
      h_.head(j).noalias() = Q_.leftCols(j).transpose() * w_;
      w_.noalias() -= Q_.leftCols(j) * h_.head(j);
    }
    const double norm = w_.norm();
    beta_(j - 1) = 0.0;
    if (!(norm > 1e-8)) return false;
    Q_.col(j) = w_ / norm;
    block = j;
    return true;
  };
  while (j < m_) {
    apply(ctx, Q_.col(j).data(), w_.data());
    alpha_(j) = Q_.col(j).dot(w_);
    w_.noalias() -= alpha_(j) * Q_.col(j);
    if (j > block) w_.noalias() -= beta_(j - 1) * Q_.col(j - 1);
    for (int pass = 0; pass < 2; ++pass) {
      h_.head(j + 1).noalias() = Q_.leftCols(j + 1).transpose() * w_;
      w_.noalias() -= Q_.leftCols(j + 1) * h_.head(j + 1);
    }
    const double beta = w_.norm();
    ++j;
    beta_(j - 1) = beta;
    scale = std::max({scale, std::abs(alpha_(j - 1)), beta});
    if (j == dim_) {
      converged_ = true;
      break;
    }
    // Residuals within tol of the largest |theta| or |alpha| (a saddle's top eigenvalue may be
    // near 0 while others are large).
    const int count = std::min(k_, j);
    bool all = false;
    double bound = 0.0;
    bool block_done = true;
    if (checking) {
      ritz(block, j, 1, false);
      bound = tol_ * std::max(std::abs(theta_(0)), scale);
      block_done = std::abs(beta * last_(0)) <= bound;
    }
    if (count == k_ && block_done) {
      ritz(0, j, count, false);
      bound = tol_ * std::max(std::abs(theta_(0)), scale);
      all = true;
      for (int i = 0; i < count; ++i) all = all && std::abs(beta * last_(i)) <= bound;
    }
    if (all) {
      const bool same =
          checking && (theta_.head(count) - checked_.head(count)).cwiseAbs().maxCoeff() <= bound;
      if (k_ == 1 || same) {
        converged_ = true;
        break;
      }
      checked_.head(count) = theta_.head(count);
      checking = true;
      if (j == m_) break;
      if (!restart()) {
        converged_ = true;
        break;
      }
      continue;
    }
    if (j == m_) break;
    if (!std::isfinite(beta)) break;  // a diverged run: no use in going on
    if (beta <= 1e3 * kEps * scale) {
      // An invariant subspace: go on from a new direction orthogonal to it.
      if (!restart()) {
        converged_ = true;
        break;
      }
    } else {
      Q_.col(j) = w_ / beta;
    }
  }
  const int count = std::min(k_, j);
  ritz(0, j, count, true);
  for (int i = 0; i < count; ++i) {
    values_(i) = theta_(i);
    ritz_.col(i).noalias() = Q_.leftCols(j) * s_.col(i).head(j);
  }
  for (int i = count; i < k_; ++i) {
    values_(i) = std::numeric_limits<double>::quiet_NaN();
    ritz_.col(i).setZero();
  }
  warm_ = true;
  return j;
}

void Hessian::bind(const Problem& problem, const LinearNet& net, const HessianOptions& options,
                   std::uint64_t seed) {
  problem_ = &problem;
  const int L = net.depth();
  const auto& n = net.widths();
  const Eigen::Index d = problem.dim(), k = problem.targets();
  offsets_.assign(1, 0);
  for (int l = 1; l <= L; ++l) offsets_.push_back(offsets_.back() + n[l] * n[l - 1]);
  dP_.assign(L, {});
  dS_.assign(L, {});
  B_.assign(L, {});
  C_.assign(L, {});
  T_.assign(L, {});
  U_.assign(L, {});
  for (int l = 1; l <= L; ++l) {
    dP_[l - 1].setZero(n[l], d);
    if (l < L) dS_[l].setZero(k, n[l]);
    B_[l - 1].setZero(n[l], d);
    U_[l - 1].setZero(n[l], d);
    C_[l - 1].setZero(k, n[l - 1]);
    T_[l - 1].setZero(n[l], n[l - 1]);
  }
  he_.setZero(k, d);
  if (!problem.uses_stats()) {
    dx_.setZero(k, problem.samples());
    curv_.setZero(k, problem.samples());
  }
  layers_.bind(parameters(), options, seed);
  HessianOptions one = options;
  one.k = 1;
  e2e_.bind(k * d, one, seed ^ 0x9e3779b97f4a7c15ULL);
  e2e_constant_ = problem.uses_stats();
  if (e2e_constant_) {
    // H_e[D] = a D Sigma_xx: eigenvalues a lambda_i(Sigma_xx), each k times.
    Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eig(problem.sigma_xx(), Eigen::EigenvaluesOnly);
    e2e_value_ = problem.stats_scale() * eig.eigenvalues().maxCoeff();
  }
}

void Hessian::prepare(StepCache& cache) {
  cache_ = &cache;
  const Problem& p = *problem_;
  if (p.uses_stats()) return;
  const Eigen::MatrixXd& R = cache.residual();
  p.loss().block_curvature(R.data(), p.data().Y.data(), curv_.data(), R.size(),
                           p.loss().scale(p.samples()));
}

void Hessian::product_e2e(const double* din, double* out) {
  StepCache& c = *cache_;
  const Problem& p = *problem_;
  const Eigen::Index k = p.targets(), d = p.dim();
  const Eigen::Map<const Eigen::MatrixXd> D(din, k, d);
  Eigen::Map<Eigen::MatrixXd> H(out, k, d);
  if (p.uses_stats()) {
    c.sigma_pass().times(D, H);
    H *= p.stats_scale();
  } else {
    c.data_pass().times(D, dx_);
    dx_.array() *= curv_.array();
    c.data_pass().times_transposed(dx_, H);
  }
}

void Hessian::product(const double* v, double* out) {
  StepCache& c = *cache_;
  const LinearNet& net = c.net();
  const int L = net.depth();
  const auto& W = net.layers;
  auto V = [&](int l) {  // V_l, l = 1..L
    return Eigen::Map<const Eigen::MatrixXd>(v + offsets_[l - 1], W[l - 1].rows(), W[l - 1].cols());
  };
  // dP_l = W_l dP_{l-1} + V_l P_{l-1}, dP_1 = V_1 (B_ as scratch).
  dP_[0] = V(1);
  for (int l = 2; l <= L; ++l) {
    multiply(dP_[l - 1], W[l - 1], dP_[l - 2]);
    multiply(B_[l - 1], V(l), c.prefix(l - 1));
    dP_[l - 1] += B_[l - 1];
  }
  // dS_{L-1} = V_L, dS_l = dS_{l+1} W_{l+1} + S_{l+1} V_{l+1} (C_ as scratch).
  if (L > 1) dS_[L - 1] = V(L);
  for (int l = L - 2; l >= 1; --l) {
    multiply(dS_[l], dS_[l + 1], W[l]);
    multiply(C_[l], c.suffix(l + 1), V(l + 1));
    dS_[l] += C_[l];
  }
  product_e2e(dP_[L - 1].data(), he_.data());
  const Eigen::MatrixXd& G = c.e2e_gradient();
  // (H v)_l = (S_l^T H_e[dW_e] + dS_l^T G) P_{l-1}^T + S_l^T G dP_{l-1}^T, with S_L = I,
  // dS_L = 0, P_0 = I, dP_0 = 0.
  for (int l = 1; l <= L; ++l) {
    Eigen::Map<Eigen::MatrixXd> H(out + offsets_[l - 1], W[l - 1].rows(), W[l - 1].cols());
    Eigen::MatrixXd& B = B_[l - 1];
    if (l == L) {
      B = he_;
    } else {
      multiply(B, c.suffix(l).transpose(), he_);
      multiply(U_[l - 1], dS_[l].transpose(), G);
      B += U_[l - 1];
    }
    if (l == 1) {
      H = B;
      continue;
    }
    multiply(H, B, c.prefix(l - 1).transpose());
    multiply(C_[l - 1], G, dP_[l - 2].transpose());
    if (l == L) {
      H += C_[l - 1];
    } else {
      multiply(T_[l - 1], c.suffix(l).transpose(), C_[l - 1]);
      H += T_[l - 1];
    }
  }
}

void Hessian::apply(StepCache& cache, const double* v, double* out) {
  prepare(cache);
  product(v, out);
}

void Hessian::apply_e2e(StepCache& cache, const double* d, double* out) {
  prepare(cache);
  product_e2e(d, out);
}

void Hessian::save(StateMap& state, const std::string& prefix) const {
  layers_.save(state, prefix + "layers.");
  e2e_.save(state, prefix + "e2e.");
}

void Hessian::load(const StateMap& state, const std::string& prefix) {
  layers_.load(state, prefix + "layers.");
  e2e_.load(state, prefix + "e2e.");
}

const Eigen::VectorXd& Hessian::top(StepCache& cache) {
  prepare(cache);
  products_ = layers_.run([](void* ctx, const double* in,
                             double* out) { static_cast<Hessian*>(ctx)->product(in, out); },
                          this);
  return layers_.values();
}

double Hessian::top_e2e(StepCache& cache) {
  if (e2e_constant_) return e2e_value_;
  prepare(cache);
  e2e_.run([](void* ctx, const double* in,
              double* out) { static_cast<Hessian*>(ctx)->product_e2e(in, out); },
           this);
  return e2e_.values()(0);
}

}  // namespace dln
