// Products with the data matrix X (d x n, one sample per column): A X and G X^T, the two
// passes over the data of a step on the data path. Large products are cut into column slices
// fixed by the sizes alone and run on a WorkerPool, so the numbers are the same bit for bit
// whatever the number of threads.
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

#include "dln/core/multiply.hpp"

namespace dln {

// threads - 1 workers started once; run() hands out tasks without allocating. Between tasks a
// worker spins briefly before it sleeps, since a step's passes come microseconds apart and
// waking a sleeping thread costs tens of microseconds.
class WorkerPool {
 public:
  explicit WorkerPool(int threads);
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  int threads() const { return static_cast<int>(workers_.size()) + 1; }
  // Calls task(ctx, i) for every i in [0, tasks) on the workers and the calling thread;
  // returns when all have finished. task must not throw.
  void run(int tasks, void (*task)(void*, int), void* ctx);

 private:
  void work();
  void drain();

  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::atomic<long> generation_{0};
  std::atomic<int> busy_{0};
  std::atomic<bool> stop_{false};
  int tasks_ = 0;
  void (*task_)(void*, int) = nullptr;
  void* ctx_ = nullptr;
  std::atomic<int> next_{0};
};

// A product of at least two slices' work is cut into slices of at least kSliceWork
// multiply-adds, at most kMaxSlices of them. Sizes alone decide, never the thread count.
inline constexpr double kSliceWork = 1 << 17;
inline constexpr Eigen::Index kMaxSlices = 16;

// dst = a b with dst's columns cut into slices fixed by the sizes alone (at least 2^17
// multiply-adds each, at most 16, widths a multiple of 4), run on `pool` (here, in order, when
// it is null): the same numbers bit for bit whatever the number of threads. A product of less
// than two slices' work is one multiply. Nothing is allocated (dst must have its size, or be a
// plain matrix that is resized).
template <class Dst, class A, class B>
void multiply_sliced(WorkerPool* pool, Dst& dst, const A& a, const B& b) {
  const Eigen::Index n = b.cols();
  const double work = double(a.rows()) * double(a.cols()) * double(n);
  Eigen::Index slices =
      std::min<Eigen::Index>(static_cast<Eigen::Index>(work / kSliceWork), kMaxSlices);
  Eigen::Index width = slices >= 2 ? (n + slices - 1) / slices : n;
  width = (width + 3) / 4 * 4;
  slices = width > 0 ? (n + width - 1) / width : 1;
  if (slices < 2) {
    multiply(dst, a, b);
    return;
  }
  if constexpr (std::is_base_of_v<Eigen::PlainObjectBase<Dst>, Dst>) dst.resize(a.rows(), n);
  struct Context {
    Dst* dst;
    const A* a;
    const B* b;
    Eigen::Index n, width;
  } ctx{&dst, &a, &b, n, width};
  auto task = [](void* p, int s) {
    const auto& c = *static_cast<Context*>(p);
    const Eigen::Index lo = s * c.width, w = std::min(c.width, c.n - lo);
    multiply(c.dst->middleCols(lo, w), *c.a, c.b->middleCols(lo, w));
  };
  if (pool != nullptr) {
    pool->run(static_cast<int>(slices), task, &ctx);
  } else {
    for (int s = 0; s < static_cast<int>(slices); ++s) task(&ctx, s);
  }
}

class DataPass {
 public:
  // Products of `rows`-row matrices with X; sizes the slices and their buffers.
  void bind(Eigen::Index rows, const Eigen::MatrixXd& X);
  void set_pool(WorkerPool* pool) { pool_ = pool; }
  int slices() const { return static_cast<int>(bounds_.size()) - 1; }

  // out = A X (A: rows x d, out: rows x n).
  void times(const Eigen::Ref<const Eigen::MatrixXd>& A, Eigen::Ref<Eigen::MatrixXd> out);
  // out = G X^T (G: rows x n, out: rows x d): per-slice sums added in slice order.
  void times_transposed(const Eigen::Ref<const Eigen::MatrixXd>& G,
                        Eigen::Ref<Eigen::MatrixXd> out);
  // Both passes in one: per slice AX_s = A X_s, then between(ctx, s, first column, columns)
  // (which fills G's columns there), then G_s X_s^T while X_s is still in cache; GXt = the sum
  // of those in slice order. One read of X from memory instead of two. With 2 to 12 rows a
  // slice goes in blocks of columns small enough to stay in L2, so between may be called
  // several times per slice, for its consecutive blocks in order: it accumulates per slice.
  using Between = void (*)(void* ctx, int slice, Eigen::Index first, Eigen::Index columns);
  void times_then_transposed(const Eigen::Ref<const Eigen::MatrixXd>& A,
                             Eigen::Ref<Eigen::MatrixXd> AX,
                             const Eigen::Ref<const Eigen::MatrixXd>& G,
                             Eigen::Ref<Eigen::MatrixXd> GXt, Between between, void* ctx);

 private:
  void for_slices(void (*task)(void*, int), void* ctx);

  const Eigen::MatrixXd* X_ = nullptr;
  std::vector<Eigen::Index> bounds_;      // slice s is columns [bounds_[s], bounds_[s+1])
  std::vector<Eigen::MatrixXd> partial_;  // rows x d per slice (times_transposed)
  // The blocked fused pass (2 to 12 rows): A^T packed, and per slice G_s X_s^T transposed.
  Eigen::MatrixXd at_;
  std::vector<Eigen::MatrixXd> partial_t_;
  WorkerPool* pool_ = nullptr;
  const Eigen::Ref<const Eigen::MatrixXd>* in_ = nullptr;
  Eigen::Ref<Eigen::MatrixXd>* out_ = nullptr;
  const Eigen::Ref<const Eigen::MatrixXd>* in2_ = nullptr;
  Between between_ = nullptr;
  void* between_ctx_ = nullptr;
};

}  // namespace dln
