// What one step computes, computed once and shared by the optimiser and every probe: the
// end-to-end matrix, prefix and suffix products, the loss, dL/dW_e and the layer gradients.
// Everything is filled lazily into buffers sized by bind(); nothing allocates afterwards.
#pragma once

#include <Eigen/Core>
#include <Eigen/Eigenvalues>
#include <cstdint>
#include <memory>
#include <vector>

#include "dln/core/data_pass.hpp"
#include "dln/core/problem.hpp"
#include "dln/model/linear_net.hpp"

namespace dln {

class Hessian;
struct HessianOptions;

class StepCache {
 public:
  StepCache();
  ~StepCache();
  StepCache(const StepCache&) = delete;
  StepCache& operator=(const StepCache&) = delete;

  // Sizes every buffer for this problem and net; the net must outlive the cache's use.
  void bind(const Problem& problem, const LinearNet& net);
  // The weights changed: everything computed is stale (and a mini-batch is over).
  void invalidate() {
    valid_ = 0;
    batch_ = false;
  }

  // Mini-batches: bind_batches() sizes the buffers for batches of up to `batch` samples; then
  // use_batch() gathers the samples `index[0 .. size)` and, until invalidate(), loss(),
  // e2e_gradient() and the layer gradients are those of that batch (its own c in the mean).
  void bind_batches(Eigen::Index batch);
  void use_batch(const std::int64_t* index, Eigen::Index size);

  const Problem& problem() const { return *problem_; }
  // The depth N of the model the run stands for: the net's depth, or optimizer.depth when the
  // net is the collapsed end-to-end matrix (e2e); theory probes use it.
  int model_depth() const { return model_depth_; }
  void set_model_depth(int depth) { model_depth_ = depth; }
  const LinearNet& net() const { return *net_; }

  const Eigen::MatrixXd& end_to_end();
  // P_l = W_l ... W_1 for l = 1..L (P_L = W_e).
  const Eigen::MatrixXd& prefix(int l);
  // S_l = W_L ... W_{l+1} for l = 0..L-1 (S_0 = W_e; S_L = I is not stored).
  const Eigen::MatrixXd& suffix(int l);
  double loss();
  // An optimiser that already knows the loss at the new weights (AGD) hands it over, so that
  // it is not computed again; the residual buffers stay stale until needed.
  void set_loss(double loss) {
    loss_ = loss;
    valid_ |= kLoss;
  }
  // Y_hat - Y (k x n); data path only.
  const Eigen::MatrixXd& residual();
  // dL/dW_e (k x d).
  const Eigen::MatrixXd& e2e_gradient();
  // dL/dW_l = S_l^T (dL/dW_e) P_{l-1}^T, l = 1..L (index l - 1).
  const std::vector<Eigen::MatrixXd>& layer_gradients();
  // dL/dW_l alone (l = 1..L), for optimisers that update one layer at a time.
  const Eigen::MatrixXd& layer_gradient(int l);
  // W_e - W_* (l2 only).
  const Eigen::MatrixXd& deviation_from_optimum();
  // Products with the data (data path; bound to k-row matrices). A pool set here runs the
  // large ones on several threads; the numbers do not depend on it.
  DataPass& data_pass() { return data_pass_; }
  // Products with Sigma_xx (stats path; k-row matrices), on the same pool.
  DataPass& sigma_pass() { return sigma_pass_; }
  void set_pool(WorkerPool* pool) {
    pool_ = pool;
    data_pass_.set_pool(pool);
    batch_pass_.set_pool(pool);
    sigma_pass_.set_pool(pool);
    factor_pass_.set_pool(pool);
    factor_t_pass_.set_pool(pool);
  }
  // ||W_l||_2 for l = 1..L (index l - 1), and ||W_e||_2.
  const std::vector<double>& layer_spectral_norms();
  double e2e_spectral_norm();

  // The Hessian of the loss (docs/theory.md#sharpness): enable() sizes its buffers (before the
  // loop; again on every bind); then the top eigenvalues with respect to all layers and to W_e,
  // computed once per step, and the Hessian-vector products the last computation took.
  void enable_hessian(const HessianOptions& options);
  bool has_hessian() const { return hessian_ != nullptr; }
  const Eigen::VectorXd& hessian_top();
  double hessian_top_e2e();
  int hessian_products() const;
  Hessian& hessian() { return *hessian_; }
  const Hessian& hessian() const { return *hessian_; }

 private:
  enum Part : unsigned {
    kProducts = 1u << 0,
    kSuffixes = 1u << 1,
    kLoss = 1u << 2,
    kE2eGrad = 1u << 3,
    kLayerGrads = 1u << 4,
    kDeviation = 1u << 5,
    kSpectral = 1u << 6,
    kE2eSpectral = 1u << 7,
    kResidual = 1u << 8,        // data path: residual_ and dloss_
    kFactorResidual = 1u << 9,  // stats path: W_e F - T
    kHessian = 1u << 10,
    kHessianE2e = 1u << 11,
  };
  const Eigen::MatrixXd& factor_residual();
  void compute_residual();
  void compute_batch();
  bool has(Part p) const { return (valid_ & p) != 0; }
  double spectral_norm(const Eigen::MatrixXd& w, Eigen::MatrixXd& gram,
                       Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd>& solver);

  const Problem* problem_ = nullptr;
  const LinearNet* net_ = nullptr;
  unsigned valid_ = 0;
  int model_depth_ = 1;

  std::vector<Eigen::MatrixXd> prefix_;  // prefix_[l - 1] = P_l
  std::vector<Eigen::MatrixXd> suffix_;  // suffix_[l] = S_l
  Eigen::MatrixXd residual_, dloss_;     // k x n (data path): W_e X - Y and dL/dY_hat
  WorkerPool* pool_ = nullptr;           // the large weight products' (multiply_sliced)
  DataPass data_pass_;
  std::vector<double> loss_sums_;  // data path: the loss's sum per slice of the data
  DataPass sigma_pass_, factor_pass_, factor_t_pass_;  // stats path: Sigma_xx, F and F^T
  Eigen::MatrixXd deviation_;                          // W_e - W_*
  Eigen::MatrixXd factor_residual_;                    // W_e F - T (stats path)
  Eigen::MatrixXd e2e_grad_;
  std::vector<Eigen::MatrixXd> layer_grads_, grad_tmp_;
  std::vector<bool> suffix_first_;  // per layer: (S^T G) P^T if true, else S^T (G P^T)
  double loss_ = 0.0;

  std::vector<double> spectral_;
  double e2e_spectral_ = 0.0;
  std::vector<Eigen::MatrixXd> grams_;
  std::vector<Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd>> solvers_;

  bool batch_ = false;
  Eigen::Index batch_size_ = 0;
  Eigen::MatrixXd batch_x_, batch_y_, batch_r_, batch_g_;  // d x B, k x B, k x B, k x B
  DataPass batch_pass_;                                    // products with batch_x_
  std::vector<double> batch_sums_;                         // the batch loss's sum per slice

  std::unique_ptr<Hessian> hessian_;
  std::unique_ptr<HessianOptions> hessian_options_;
  const Eigen::VectorXd* hessian_top_ = nullptr;
  double hessian_top_e2e_ = 0.0;
};

}  // namespace dln
