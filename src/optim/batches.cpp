#include "dln/optim/batches.hpp"

#include <algorithm>
#include <limits>
#include <random>

namespace dln {
namespace {

// An unbiased draw from [0, bound): rejection of the top partial range.
std::uint64_t below(std::mt19937_64& engine, std::uint64_t bound) {
  const std::uint64_t limit =
      std::numeric_limits<std::uint64_t>::max() - std::numeric_limits<std::uint64_t>::max() % bound;
  std::uint64_t r;
  do r = engine();
  while (r >= limit);
  return r % bound;
}

}  // namespace

std::uint64_t mix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

void epoch_permutation(std::uint64_t seed, long epoch, std::vector<std::int64_t>& out) {
  std::mt19937_64 engine(mix64(seed ^ mix64(static_cast<std::uint64_t>(epoch))));
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = static_cast<std::int64_t>(i);
  for (std::size_t i = out.size(); i > 1; --i) std::swap(out[i - 1], out[below(engine, i)]);
}

void MiniBatches::reset(Eigen::Index n, long batch, bool with_replacement, std::uint64_t seed) {
  n_ = n;
  batch_ = batch;
  with_replacement_ = with_replacement;
  seed_ = seed;
  perm_.assign(with_replacement ? 0 : static_cast<std::size_t>(n), 0);
  perm_epoch_ = -1;
}

Eigen::Index MiniBatches::select(long t, std::int64_t* out) {
  if (with_replacement_) {
    // Step t's draws from a stream of their own (mixed apart from the permutations' seeds).
    std::mt19937_64 engine(mix64(~seed_ ^ mix64(static_cast<std::uint64_t>(t))));
    for (long j = 0; j < batch_; ++j)
      out[j] = static_cast<std::int64_t>(below(engine, static_cast<std::uint64_t>(n_)));
    return batch_;
  }
  const long per_epoch = static_cast<long>((n_ + batch_ - 1) / batch_);
  const long epoch = t / per_epoch, k = t % per_epoch;
  if (epoch != perm_epoch_) {
    epoch_permutation(seed_, epoch, perm_);
    perm_epoch_ = epoch;
  }
  const Eigen::Index first = static_cast<Eigen::Index>(k) * batch_;
  const Eigen::Index size = std::min<Eigen::Index>(batch_, n_ - first);
  std::copy_n(perm_.begin() + first, size, out);
  return size;
}

}  // namespace dln
