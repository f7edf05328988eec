// Probes that check the theory of deep linear networks along a run: the deviation from the
// end-to-end equation, conserved balancedness, the norm-gap bound, and Saxe's mode strengths
// with their closed-form prediction (docs/metrics.md, docs/theory.md).
#pragma once

#include <memory>
#include <string>

#include "dln/probe/probe.hpp"

namespace dln {

// e2e_dev, balance_drift, norm_gap, norm_gap_bound, mode, mode_theory, basu_U; null for other
// names.
std::unique_ptr<Probe> make_theory_probe(const std::string& name);
// basu_bound, with the constants of Basu et al.'s Theorem 3.
std::unique_ptr<Probe> make_basu_bound(double kappa1, double kappa2);

}  // namespace dln
