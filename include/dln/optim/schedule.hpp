// Learning-rate schedules: the rate of the next step from the base rate, the step count and,
// for adaptive rules, the current weights (docs/theory.md#step-size-schedules).
#pragma once

#include <string>

#include "dln/core/state_map.hpp"
#include "dln/core/step_cache.hpp"
#include "dln/registry.hpp"

namespace dln {

struct ScheduleSpec {
  std::string kind = "constant";  // constant | warmup | step | cosine | inverse_time | ji_telgarsky
  long warmup_steps = 0;          // linear warmup over the first steps, with any kind
  double gamma = 0.1;             // step: the factor every step_size steps
  long step_size = 0;             // step
  long decay_steps = 0;           // cosine: the steps of the half cosine (0: optimizer.steps)
  double min_lr = 0.0;            // cosine: the rate it ends at
  double decay_rate = 0.0;        // inverse_time: lr / (1 + decay_rate t)
  long steps = 0;                 // optimizer.steps (cosine's default length)
};

const Registry& schedule_registry();

// Why a schedule cannot drive this problem (empty if it can).
std::string schedule_unavailable(const ScheduleSpec& spec, const Problem& problem);

// The rate of step t (0-based) of a schedule that does not look at the weights (every kind but
// ji_telgarsky), warmup included.
double scheduled_rate(const ScheduleSpec& spec, double base, long t);

class Schedule {
 public:
  Schedule(const ScheduleSpec& spec, double base_lr) : spec_(spec), base_(base_lr) {}
  // Before the first step, at the initial weights.
  void reset(StepCache& cache);
  // The rate of step t (0-based) at the current weights.
  double next(long t, StepCache& cache);
  // The adaptive state a checkpoint keeps (ji_telgarsky: the radius and its factor).
  void save(StateMap& state, const std::string& prefix) const;
  void load(const StateMap& state, const std::string& prefix);

 private:
  double max_layer_norm(const StepCache& cache) const;

  ScheduleSpec spec_;
  double base_;
  // ji_telgarsky: the radius R_t and the factor of beta(R) = factor R^{2L-2}.
  double radius_ = 0.0, factor_ = 0.0;
  int depth_ = 1;
};

}  // namespace dln
