#include "dln/optim/optimizer.hpp"

#include <stdexcept>

namespace dln {
namespace {

// W_l <- W_l - lr dL/dW_l.
class Gd final : public Optimizer {
 public:
  void reset(const LinearNet&) override {}
  void step(StepCache& cache, LinearNet& net, double lr) override {
    const auto& g = cache.layer_gradients();
    for (int l = 0; l < net.depth(); ++l) net.layers[l] -= lr * g[l];
    cache.invalidate();
  }
};

// Heavy ball in PyTorch's form: v <- mu v + g, W <- W - lr v; with nesterov,
// W <- W - lr (g + mu v) (docs/theory.md#optimisers).
class Momentum final : public Optimizer {
 public:
  Momentum(double mu, bool nesterov) : mu_(mu), nesterov_(nesterov) {}
  void reset(const LinearNet& net) override {
    velocity_.clear();
    for (const auto& W : net.layers) velocity_.push_back(Eigen::MatrixXd::Zero(W.rows(), W.cols()));
  }
  void step(StepCache& cache, LinearNet& net, double lr) override {
    const auto& g = cache.layer_gradients();
    for (int l = 0; l < net.depth(); ++l) {
      velocity_[l] = mu_ * velocity_[l] + g[l];
      if (nesterov_)
        net.layers[l] -= lr * (g[l] + mu_ * velocity_[l]);
      else
        net.layers[l] -= lr * velocity_[l];
    }
    cache.invalidate();
  }

 private:
  double mu_;
  bool nesterov_;
  std::vector<Eigen::MatrixXd> velocity_;
};

}  // namespace

const Registry& optimizer_registry() {
  static const Registry registry = {
      {"gd", "full-batch gradient descent, every layer at once", {}},
      {"momentum", "heavy-ball momentum: v <- mu v + g, W <- W - lr v", {"optimizer.momentum"}},
      {"nesterov",
       "Nesterov momentum: v <- mu v + g, W <- W - lr (g + mu v)",
       {"optimizer.momentum"}},
  };
  return registry;
}

std::unique_ptr<Optimizer> make_optimizer(const OptimizerSpec& spec) {
  if (spec.kind == "gd") return std::make_unique<Gd>();
  if (spec.kind == "momentum") return std::make_unique<Momentum>(spec.momentum, false);
  if (spec.kind == "nesterov") return std::make_unique<Momentum>(spec.momentum, true);
  throw std::invalid_argument("unknown optimizer '" + spec.kind + "'");
}

const Registry& schedule_registry() {
  static const Registry registry = {
      {"constant", "the same learning rate at every step", {}},
  };
  return registry;
}

double scheduled_lr(const ScheduleSpec& spec, double base_lr, long /*t*/) {
  (void)spec;
  return base_lr;
}

}  // namespace dln
