// Rates of convergence read off a run: the slope of log(loss) and of log(error) against
// log(step), fitted over the last `window` recorded rows (docs/metrics.md#loglog_slope).
#pragma once

#include <memory>

#include "dln/probe/probe.hpp"

namespace dln {

// loglog_slope.loss and loglog_slope.error; NaN until two rows with step >= 1 are recorded.
std::unique_ptr<Probe> make_loglog_slope(int window);

}  // namespace dln
