// The adaptive optimisers a researcher tries on the shallow model instead of depth: Adagrad
// and Adam, in PyTorch's form and with its defaults (docs/theory.md#optimisers).
#pragma once

#include <memory>

#include "dln/optim/optimizer.hpp"

namespace dln {

// sum <- sum + g^2;  W <- W - lr g / (sqrt(sum) + eps)  (torch.optim.Adagrad, lr_decay 0,
// initial accumulator 0).
std::unique_ptr<Optimizer> make_adagrad(double eps, double decay = 0.0);

// m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g^2;
// W <- W - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)  (torch.optim.Adam).
std::unique_ptr<Optimizer> make_adam(double beta1, double beta2, double eps, double decay = 0.0);

}  // namespace dln
