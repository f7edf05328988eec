// Probes of classification on separable data (Ji & Telgarsky): the normalised margin of the
// net, the alignment of W_prod with the max-margin direction, and the alignment of adjacent
// layers' top singular vectors (docs/metrics.md).
#pragma once

#include <memory>
#include <string>

#include "dln/probe/probe.hpp"

namespace dln {

// margin, cos_maxmargin, adj_align; null for other names.
std::unique_ptr<Probe> make_alignment_probe(const std::string& name);

}  // namespace dln
