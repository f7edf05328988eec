// Probes of the scalar-regression view of a run (the AGD paper): the output-error alignment
// <Y^, E>, the error along the eigenvectors of X^T X, the spectra of the per-layer kernels
// K^(l) that govern one gradient step of layer l, the effective vector W_e, and the loss on a
// held-out split (docs/metrics.md).
#pragma once

#include <memory>
#include <string>

#include "dln/probe/probe.hpp"

namespace dln {

// yhat_dot_err, err_eig, kernel_rho, kernel_eig, theta_e, test_loss; null for other names.
std::unique_ptr<Probe> make_kernel_probe(const std::string& name, const ProbeOptions& options);

// Largest number of samples for which kernel_eig lists the whole spectrum.
inline constexpr Eigen::Index kKernelEigMaxSamples = 64;

}  // namespace dln
