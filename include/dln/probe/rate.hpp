// Rates of convergence read off a run: the slope of log(loss) and of log(error) against
// log(step), fitted over the last `window` recorded rows (docs/metrics.md#loglog_slope).
#pragma once

#include <memory>

#include "dln/probe/probe.hpp"

namespace dln {

// error = ||Y^ - Y||_F (on the l2 statistics path: to the least-squares fit).
std::unique_ptr<Probe> make_error_probe();

// loglog_slope.loss and loglog_slope.error; NaN until two rows with step >= 1 are recorded.
std::unique_ptr<Probe> make_loglog_slope(int window);

}  // namespace dln
