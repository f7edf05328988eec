#include "dln/optim/adaptive.hpp"

#include <cmath>
#include <limits>

namespace dln {
namespace {

void zeros_like(const LinearNet& net, std::vector<Eigen::MatrixXd>& out) {
  out.clear();
  for (const auto& W : net.layers) out.push_back(Eigen::MatrixXd::Zero(W.rows(), W.cols()));
}

class Adagrad final : public Optimizer {
 public:
  Adagrad(double eps, double decay) : eps_(eps), decay_(decay) {}
  void reset(const LinearNet& net, const Problem&) override {
    zeros_like(net, sum_);
    grads_.reset(net, decay_);
  }
  void save(StateMap& state, const std::string& prefix) const override {
    save_list(state, prefix + "sum", sum_);
  }
  void load(const StateMap& state, const std::string& prefix) override {
    load_list(state, prefix + "sum", sum_);
  }
  void step(StepCache& cache, LinearNet& net, double lr) override {
    const auto& g = grads_.of(cache, net);
    for (int l = 0; l < net.depth(); ++l) {
      sum_[l].array() += g[l].array().square();
      net.layers[l].array() -= lr * g[l].array() / (sum_[l].array().sqrt() + eps_);
    }
    cache.invalidate();
  }

 private:
  double eps_, decay_;
  DecayedGradients grads_;
  std::vector<Eigen::MatrixXd> sum_;
};

class Adam final : public Optimizer {
 public:
  Adam(double beta1, double beta2, double eps, double decay)
      : beta1_(beta1), beta2_(beta2), eps_(eps), decay_(decay) {}
  void reset(const LinearNet& net, const Problem&) override {
    grads_.reset(net, decay_);
    zeros_like(net, m_);
    zeros_like(net, v_);
    t_ = 0;
  }
  void save(StateMap& state, const std::string& prefix) const override {
    save_list(state, prefix + "m", m_);
    save_list(state, prefix + "v", v_);
    put_scalar(state, prefix + "t", static_cast<double>(t_));
  }
  void load(const StateMap& state, const std::string& prefix) override {
    load_list(state, prefix + "m", m_);
    load_list(state, prefix + "v", v_);
    t_ = state_count(state, prefix + "t", 0, std::numeric_limits<long>::max() / 2);
  }
  void step(StepCache& cache, LinearNet& net, double lr) override {
    const auto& g = grads_.of(cache, net);
    ++t_;
    const double bc1 = 1.0 - std::pow(beta1_, static_cast<double>(t_));
    const double bc2 = 1.0 - std::pow(beta2_, static_cast<double>(t_));
    const double step = lr / bc1, root_bc2 = std::sqrt(bc2);
    for (int l = 0; l < net.depth(); ++l) {
      m_[l] = beta1_ * m_[l] + (1.0 - beta1_) * g[l];
      v_[l].array() = beta2_ * v_[l].array() + (1.0 - beta2_) * g[l].array().square();
      net.layers[l].array() -= step * m_[l].array() / (v_[l].array().sqrt() / root_bc2 + eps_);
    }
    cache.invalidate();
  }

 private:
  double beta1_, beta2_, eps_, decay_;
  DecayedGradients grads_;
  std::vector<Eigen::MatrixXd> m_, v_;
  long t_ = 0;
};

}  // namespace

std::unique_ptr<Optimizer> make_adagrad(double eps, double decay) {
  return std::make_unique<Adagrad>(eps, decay);
}

std::unique_ptr<Optimizer> make_adam(double beta1, double beta2, double eps, double decay) {
  return std::make_unique<Adam>(beta1, beta2, eps, decay);
}

}  // namespace dln
