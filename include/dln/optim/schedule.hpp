// Learning-rate schedules: the rate for step t (0-based) from the base rate.
#pragma once

#include <string>

#include "dln/registry.hpp"

namespace dln {

struct ScheduleSpec {
  std::string kind = "constant";
};

const Registry& schedule_registry();

// Learning rate of step t; constant returns base_lr.
double scheduled_lr(const ScheduleSpec& spec, double base_lr, long t);

}  // namespace dln
