// Mini-batches: the samples of step t, from a seeded permutation of the data per epoch (the
// last batch of an epoch may be smaller) or drawn with replacement; a function of (seed, t)
// alone, so that a resumed run draws what an uninterrupted one would. The torch engine draws
// its batches with the same permutations (docs/theory.md#mini-batches).
#pragma once

#include <Eigen/Core>
#include <cstdint>
#include <vector>

namespace dln {

// splitmix64's finaliser.
std::uint64_t mix64(std::uint64_t x);

// The permutation of epoch `epoch` of out.size() samples: Fisher-Yates on a 64-bit Mersenne
// Twister seeded by mix64(seed ^ mix64(epoch)), with unbiased bounded draws (rejection).
void epoch_permutation(std::uint64_t seed, long epoch, std::vector<std::int64_t>& out);

class MiniBatches {
 public:
  // n samples in batches of `batch` (1 <= batch < n); buffers sized here.
  void reset(Eigen::Index n, long batch, bool with_replacement, std::uint64_t seed);
  // The samples of step t (0-based) into out (room for batch entries); returns their number.
  Eigen::Index select(long t, std::int64_t* out);
  long batch() const { return batch_; }

 private:
  Eigen::Index n_ = 0;
  long batch_ = 0;
  bool with_replacement_ = false;
  std::uint64_t seed_ = 0;
  std::vector<std::int64_t> perm_;
  long perm_epoch_ = -1;
};

}  // namespace dln
