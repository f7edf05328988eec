#include "dln/core/step_cache.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "dln/core/hessian.hpp"
#include "dln/core/multiply.hpp"

namespace dln {

StepCache::StepCache() = default;
StepCache::~StepCache() = default;

// The seed of the Lanczos start vectors: fixed, so that a run's numbers depend on its config
// alone.
constexpr std::uint64_t kLanczosSeed = 0x5eed1a2c05ULL;

void StepCache::enable_hessian(const HessianOptions& options) {
  // A second probe set on the same run (the Python package's measure()) keeps the run's
  // Lanczos state when it asks for the same settings.
  if (hessian_ && hessian_options_->k == options.k && hessian_options_->iters == options.iters &&
      hessian_options_->tol == options.tol)
    return;
  hessian_options_ = std::make_unique<HessianOptions>(options);
  hessian_ = std::make_unique<Hessian>();
  hessian_->bind(*problem_, *net_, options, kLanczosSeed);
  valid_ &= ~(kHessian | kHessianE2e);
}

const Eigen::VectorXd& StepCache::hessian_top() {
  if (!has(kHessian)) {
    hessian_top_ = &hessian_->top(*this);
    valid_ |= kHessian;
  }
  return *hessian_top_;
}

double StepCache::hessian_top_e2e() {
  if (!has(kHessianE2e)) {
    hessian_top_e2e_ = hessian_->top_e2e(*this);
    valid_ |= kHessianE2e;
  }
  return hessian_top_e2e_;
}

int StepCache::hessian_products() const {
  return hessian_ ? hessian_->last_products() : 0;
}

void StepCache::bind(const Problem& problem, const LinearNet& net) {
  if (net.input_dim() != problem.dim() || net.output_dim() != problem.targets())
    throw std::invalid_argument("StepCache::bind: the net's widths do not match the data");
  problem_ = &problem;
  net_ = &net;
  model_depth_ = net.depth();
  valid_ = 0;
  const int L = net.depth();
  const auto& n = net.widths();
  const Eigen::Index d = problem.dim(), k = problem.targets();

  prefix_.assign(L, {});
  suffix_.assign(L, {});
  layer_grads_.assign(L, {});
  grad_tmp_.assign(L, {});
  suffix_first_.assign(L, true);
  for (int l = 1; l <= L; ++l) {
    if (l > 1) prefix_[l - 1].resize(n[l], d);  // P_1 is W_1 itself
    if (l < L) suffix_[l].resize(k, n[l]);
    layer_grads_[l - 1].resize(n[l], n[l - 1]);
    // Associate S_l^T G P_{l-1}^T in the cheaper order.
    const double suffix_first = double(n[l]) * k * d + double(n[l]) * d * n[l - 1];
    const double prefix_first = double(k) * d * n[l - 1] + double(n[l]) * k * n[l - 1];
    suffix_first_[l - 1] = suffix_first <= prefix_first;
    if (suffix_first_[l - 1])
      grad_tmp_[l - 1].resize(n[l], d);
    else
      grad_tmp_[l - 1].resize(k, n[l - 1]);
  }
  e2e_grad_.resize(k, d);
  if (!problem.uses_stats()) {
    residual_.resize(k, problem.samples());
    dloss_.resize(k, problem.samples());
    data_pass_.bind(k, problem.data().X);
    loss_sums_.assign(data_pass_.slices(), 0.0);
  } else {
    sigma_pass_.bind(k, problem.sigma_xx());
    factor_pass_.bind(k, problem.sigma_factor());
    factor_t_pass_.bind(k, problem.sigma_factor_t());
  }
  if (problem.has_optimum()) deviation_.resize(k, d);
  if (problem.uses_stats()) factor_residual_.resize(k, problem.sigma_factor().cols());

  spectral_.assign(L, 0.0);
  grams_.clear();
  solvers_.clear();
  // Reserve so that no solver is ever copied: Eigen's size constructor leaves its status
  // field uninitialised, and copying it is undefined behaviour.
  grams_.reserve(L + 1);
  solvers_.reserve(L + 1);
  for (int l = 0; l <= L; ++l) {  // l = L is the end-to-end matrix
    const Eigen::Index rows = l < L ? n[l + 1] : k, cols = l < L ? n[l] : d;
    const Eigen::Index m = std::min(rows, cols);
    grams_.emplace_back(m, m);
    solvers_.emplace_back(m);
  }
  if (hessian_) hessian_->bind(problem, net, *hessian_options_, kLanczosSeed);
}

const Eigen::MatrixXd& StepCache::end_to_end() {
  return prefix(net_->depth());
}

const Eigen::MatrixXd& StepCache::prefix(int l) {
  if (!has(kProducts)) {
    const auto& W = net_->layers;
    for (std::size_t i = 1; i < W.size(); ++i)
      multiply_sliced(pool_, prefix_[i], W[i], i == 1 ? W[0] : prefix_[i - 1]);
    valid_ |= kProducts;
  }
  // P_1 = W_1, not copied: a step's weights change only after what it reads of them.
  return l == 1 ? net_->layers[0] : prefix_[l - 1];
}

const Eigen::MatrixXd& StepCache::suffix(int l) {
  if (l == 0) return end_to_end();
  if (!has(kSuffixes)) {
    const auto& W = net_->layers;
    const int L = net_->depth();
    if (L > 1) suffix_[L - 1] = W[L - 1];
    for (int i = L - 2; i >= 1; --i) multiply_sliced(pool_, suffix_[i], suffix_[i + 1], W[i]);
    valid_ |= kSuffixes;
  }
  return suffix_[l];
}

const Eigen::MatrixXd& StepCache::deviation_from_optimum() {
  if (!has(kDeviation)) {
    deviation_ = end_to_end();
    deviation_ -= problem_->optimum();
    valid_ |= kDeviation;
  }
  return deviation_;
}

const Eigen::MatrixXd& StepCache::factor_residual() {
  if (!has(kFactorResidual)) {
    factor_pass_.times(end_to_end(), factor_residual_);
    factor_residual_ -= problem_->sigma_target();
    valid_ |= kFactorResidual;
  }
  return factor_residual_;
}

void StepCache::bind_batches(Eigen::Index batch) {
  const Eigen::Index d = problem_->dim(), k = problem_->targets();
  batch_x_.setZero(d, batch);
  batch_y_.setZero(k, batch);
  batch_r_.setZero(k, batch);
  batch_g_.setZero(k, batch);
  batch_pass_.bind(k, batch_x_);
  batch_sums_.assign(batch_pass_.slices(), 0.0);
}

void StepCache::use_batch(const std::int64_t* index, Eigen::Index size) {
  if (size < 1 || size > batch_x_.cols())
    throw std::logic_error("StepCache::use_batch: a batch larger than bind_batches() sized");
  invalidate();
  const auto& X = problem_->data().X;
  const auto& Y = problem_->data().Y;
  for (Eigen::Index j = 0; j < size; ++j) {
    batch_x_.col(j) = X.col(index[j]);
    batch_y_.col(j) = Y.col(index[j]);
  }
  // A shorter batch (the last of an epoch) leaves zero columns, which add nothing to the
  // products and which the loss skips.
  if (size < batch_x_.cols()) batch_x_.rightCols(batch_x_.cols() - size).setZero();
  batch_size_ = size;
  batch_ = true;
}

// The batch's residual, loss and dL/dW_e = c_B l'(R_B) X_B^T: one pass over the gathered
// columns, as compute_residual() makes over the data (the same slices whatever the threads).
void StepCache::compute_batch() {
  std::fill(batch_sums_.begin(), batch_sums_.end(), 0.0);
  batch_pass_.times_then_transposed(
      end_to_end(), batch_r_, batch_g_, e2e_grad_,
      [](void* ctx, int s, Eigen::Index lo, Eigen::Index w) {
        auto& self = *static_cast<StepCache*>(ctx);
        const Eigen::Index used = std::clamp<Eigen::Index>(self.batch_size_ - lo, 0, w);
        if (used < w) self.batch_g_.middleCols(lo + used, w - used).setZero();
        if (used == 0) return;
        auto r = self.batch_r_.middleCols(lo, used);
        r -= self.batch_y_.middleCols(lo, used);
        const Loss& l = self.problem_->loss();
        self.batch_sums_[s] += l.block_sum_and_gradient(r.data(), self.batch_y_.col(lo).data(),
                                                        self.batch_g_.col(lo).data(), r.size(),
                                                        l.scale(self.batch_size_));
      },
      this);
  double sum = 0.0;
  for (double v : batch_sums_) sum += v;
  loss_ = problem_->loss().scale(batch_size_) * sum;
  valid_ |= kLoss | kE2eGrad;
}

double StepCache::loss() {
  if (has(kLoss)) return loss_;
  if (batch_) {
    compute_batch();
    return loss_;
  }
  if (problem_->uses_stats()) {
    // Cancellation-free: a sum of squares plus a constant (docs/theory.md#sufficient-statistics).
    loss_ =
        0.5 * problem_->stats_scale() * factor_residual().squaredNorm() + problem_->stats_offset();
  } else {
    compute_residual();
  }
  valid_ |= kLoss;
  return loss_;
}

// One pass over the data: per slice of samples the residual, the loss and dL/dY^, and that
// slice's share of dL/dW_e = (dL/dY^) X^T while the slice is in cache. The gradient is nearly
// always wanted where the loss is (the next step starts from the weights the loss was taken at).
void StepCache::compute_residual() {
  if (has(kResidual)) return;
  std::fill(loss_sums_.begin(), loss_sums_.end(), 0.0);
  data_pass_.times_then_transposed(
      end_to_end(), residual_, dloss_, e2e_grad_,
      [](void* ctx, int s, Eigen::Index lo, Eigen::Index w) {
        auto& self = *static_cast<StepCache*>(ctx);
        const Problem& p = *self.problem_;
        auto r = self.residual_.middleCols(lo, w);
        r -= p.data().Y.middleCols(lo, w);
        self.loss_sums_[s] += p.loss().block_sum_and_gradient(r.data(), p.data().Y.col(lo).data(),
                                                              self.dloss_.col(lo).data(), r.size(),
                                                              p.loss().scale(p.samples()));
      },
      this);
  double sum = 0.0;
  for (double s : loss_sums_) sum += s;
  loss_ = problem_->loss().scale(problem_->samples()) * sum;
  valid_ |= kResidual | kLoss | kE2eGrad;
}

const Eigen::MatrixXd& StepCache::residual() {
  if (problem_->uses_stats()) throw std::logic_error("StepCache::residual: stats path");
  if (batch_) throw std::logic_error("StepCache::residual: a mini-batch is in use");
  compute_residual();
  return residual_;
}

const Eigen::MatrixXd& StepCache::e2e_gradient() {
  if (has(kE2eGrad)) return e2e_grad_;
  if (batch_) {
    compute_batch();
    return e2e_grad_;
  }
  if (problem_->uses_stats()) {
    factor_t_pass_.times(factor_residual(), e2e_grad_);  // (W_e F - T) F^T
    e2e_grad_ *= problem_->stats_scale();
  } else {
    compute_residual();
  }
  valid_ |= kE2eGrad;
  return e2e_grad_;
}

const std::vector<Eigen::MatrixXd>& StepCache::layer_gradients() {
  if (has(kLayerGrads)) return layer_grads_;
  for (int l = 1; l <= net_->depth(); ++l) layer_gradient(l);
  valid_ |= kLayerGrads;
  return layer_grads_;
}

const Eigen::MatrixXd& StepCache::layer_gradient(int l) {
  if (has(kLayerGrads)) return layer_grads_[l - 1];
  const Eigen::MatrixXd& G = e2e_gradient();
  const int L = net_->depth();
  Eigen::MatrixXd& out = layer_grads_[l - 1];
  if (L == 1) {
    out = G;
  } else if (l == L) {
    multiply_sliced(pool_, out, G, prefix(l - 1).transpose());
  } else if (l == 1) {
    multiply_sliced(pool_, out, suffix(l).transpose(), G);
  } else if (suffix_first_[l - 1]) {
    multiply_sliced(pool_, grad_tmp_[l - 1], suffix(l).transpose(), G);
    multiply_sliced(pool_, out, grad_tmp_[l - 1], prefix(l - 1).transpose());
  } else {
    multiply_sliced(pool_, grad_tmp_[l - 1], G, prefix(l - 1).transpose());
    multiply_sliced(pool_, out, suffix(l).transpose(), grad_tmp_[l - 1]);
  }
  return out;
}

double StepCache::spectral_norm(const Eigen::MatrixXd& w, Eigen::MatrixXd& gram,
                                Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd>& solver) {
  // ||W||_2^2 is the largest eigenvalue of the smaller Gram matrix.
  if (w.rows() >= w.cols())
    gram.noalias() = w.transpose() * w;
  else
    gram.noalias() = w * w.transpose();
  solver.compute(gram, Eigen::EigenvaluesOnly);
  return std::sqrt(std::max(solver.eigenvalues().maxCoeff(), 0.0));
}

const std::vector<double>& StepCache::layer_spectral_norms() {
  if (!has(kSpectral)) {
    for (int l = 0; l < net_->depth(); ++l)
      spectral_[l] = spectral_norm(net_->layers[l], grams_[l], solvers_[l]);
    valid_ |= kSpectral;
  }
  return spectral_;
}

double StepCache::e2e_spectral_norm() {
  if (!has(kE2eSpectral)) {
    const int L = net_->depth();
    e2e_spectral_ = spectral_norm(end_to_end(), grams_[L], solvers_[L]);
    valid_ |= kE2eSpectral;
  }
  return e2e_spectral_;
}

}  // namespace dln
