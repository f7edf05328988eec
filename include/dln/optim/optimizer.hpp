// Optimisers: a small copyable spec, and state sized once by reset() and never allocated in
// step(). An optimiser sees the problem only through the step cache.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "dln/core/state_map.hpp"
#include "dln/core/step_cache.hpp"
#include "dln/model/linear_net.hpp"
#include "dln/optim/schedule.hpp"
#include "dln/registry.hpp"

namespace dln {

struct OptimizerSpec {
  std::string kind = "gd";
  double lr = 0.01;
  long steps = 1000;
  double momentum = 0.9;              // momentum, nesterov
  double beta1 = 0.9, beta2 = 0.999;  // adam
  double eps = 1e-8;                  // adam (adagrad: 1e-10 unless set)
  bool round_robin = false;           // gd: one layer at a time, each with a fresh gradient
  int depth = 1;                      // e2e, flow with dynamics e2e: the depth N of the update
  std::string dynamics = "layers";    // flow: "layers" (every W_l) or "e2e" (the end-to-end ODE)
  double time = 1.0;                  // flow: end time T of the integration
  double abs_tol = 1e-10;             // flow: error tolerances of the adaptive solver
  double rel_tol = 1e-10;
  ScheduleSpec schedule = {};
  long batch_size = 0;             // mini-batch samples (0 or >= n: all)
  bool with_replacement = false;   // mini-batches drawn i.i.d. instead of by permutations
  double weight_decay = 0.0;       // g <- g + weight_decay W
  std::uint64_t shuffle_seed = 1;  // the per-epoch permutations of mini-batches
};

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  // Sizes the state for this net and problem and zeroes it.
  virtual void reset(const LinearNet& net, const Problem& problem) = 0;
  // One update of every layer at learning rate lr, from the gradients in the cache (taken at
  // the current weights); leaves the cache invalidated. A continuous-time optimiser (flow)
  // integrates over a time interval of length lr instead.
  virtual void step(StepCache& cache, LinearNet& net, double lr) = 0;
  // True for gradient flow: steps are intervals of continuous time.
  virtual bool continuous() const { return false; }
  // Work done so far, for the summary (right-hand-side evaluations of an ODE solver).
  virtual long evaluations() const { return 0; }
  // The state a checkpoint keeps (momentum, moments, counters), under keys starting with
  // `prefix`; load() restores it after reset() on the same net.
  virtual void save(StateMap& /*state*/, const std::string& /*prefix*/) const {}
  virtual void load(const StateMap& /*state*/, const std::string& /*prefix*/) {}
};

// The layers' gradients with PyTorch's weight decay, g_l + decay W_l, in buffers sized by
// reset(); with decay 0, the cache's own gradients (so the numbers do not change).
class DecayedGradients {
 public:
  void reset(const LinearNet& net, double decay);
  const std::vector<Eigen::MatrixXd>& of(StepCache& cache, const LinearNet& net);
  double decay() const { return decay_; }

 private:
  double decay_ = 0.0;
  std::vector<Eigen::MatrixXd> out_;
};

// Whether this optimiser trains the end-to-end matrix alone (the net collapsed to one layer).
bool trains_end_to_end(const OptimizerSpec& spec);

const Registry& optimizer_registry();
std::unique_ptr<Optimizer> make_optimizer(const OptimizerSpec& spec);

}  // namespace dln
