// Probes of spectra: the Hessian's top eigenvalues (sharpness, hessian_eigs, sharpness_e2e,
// edge, hessian_products) from the step cache's Lanczos, and every singular value of the layers
// and of W_e (sv, sv_e2e) (docs/metrics.md).
#pragma once

#include <memory>
#include <string>

#include "dln/probe/probe.hpp"

namespace dln {

// Whether the probe reads the Hessian (the cache's Lanczos buffers must be enabled).
bool needs_hessian(const std::string& name);
// The probes above; null for other names.
std::unique_ptr<Probe> make_spectrum_probe(const std::string& name, const ProbeOptions& options);

}  // namespace dln
