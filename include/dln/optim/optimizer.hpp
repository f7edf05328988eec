// Optimisers: a small copyable spec, and state sized once by reset() and never allocated in
// step(). An optimiser sees the problem only through the step cache.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "dln/core/step_cache.hpp"
#include "dln/model/linear_net.hpp"
#include "dln/optim/schedule.hpp"
#include "dln/registry.hpp"

namespace dln {

struct OptimizerSpec {
  std::string kind = "gd";
  double lr = 0.01;
  long steps = 1000;
  double momentum = 0.9;  // momentum, nesterov
  ScheduleSpec schedule = {};
};

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  // Sizes the state for this net and zeroes it.
  virtual void reset(const LinearNet& net) = 0;
  // One update of every layer at learning rate lr, from the gradients in the cache (taken at
  // the current weights); leaves the cache invalidated.
  virtual void step(StepCache& cache, LinearNet& net, double lr) = 0;
};

const Registry& optimizer_registry();
std::unique_ptr<Optimizer> make_optimizer(const OptimizerSpec& spec);

}  // namespace dln
