#include "dln/core/data_pass.hpp"

#include <algorithm>
#include <array>
#include <utility>

namespace dln {

WorkerPool::WorkerPool(int threads) {
  for (int i = 1; i < threads; ++i) workers_.emplace_back([this] { work(); });
}

WorkerPool::~WorkerPool() {
  {
    std::lock_guard lock(mutex_);
    stop_.store(true);
  }
  wake_.notify_all();
  for (auto& w : workers_) w.join();
}

void WorkerPool::drain() {
  for (int i = next_.fetch_add(1); i < tasks_; i = next_.fetch_add(1)) task_(ctx_, i);
}

namespace {

inline void relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

constexpr int kSpins = 1 << 15;  // about 0.1 to 1 ms of pause instructions

}  // namespace

void WorkerPool::run(int tasks, void (*task)(void*, int), void* ctx) {
  if (workers_.empty() || tasks <= 1) {
    for (int i = 0; i < tasks; ++i) task(ctx, i);
    return;
  }
  task_ = task;
  ctx_ = ctx;
  tasks_ = tasks;
  next_.store(0);
  busy_.store(static_cast<int>(workers_.size()));
  {
    // Under the mutex, so that a worker about to sleep either sees the new generation or is
    // woken by the notification.
    std::lock_guard lock(mutex_);
    generation_.fetch_add(1, std::memory_order_release);
  }
  wake_.notify_all();
  drain();
  while (busy_.load(std::memory_order_acquire) != 0) relax();
}

void WorkerPool::work() {
  long seen = 0;
  for (;;) {
    int spins = 0;
    while (generation_.load(std::memory_order_acquire) == seen && !stop_.load()) {
      if (++spins < kSpins) {
        relax();
        continue;
      }
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return stop_.load() || generation_.load() != seen; });
    }
    if (stop_.load()) return;
    seen = generation_.load(std::memory_order_acquire);
    drain();
    busy_.fetch_sub(1, std::memory_order_acq_rel);
  }
}

namespace {

// Slices of the data also have at least kMinSliceColumns columns (kSliceWork, kMaxSlices: the
// header).
constexpr Eigen::Index kMinSliceColumns = 64;
constexpr double kMaxPartialBytes = 32.0 * (1 << 20);

// The blocked fused pass. Eigen's GEMM copies (packs) X before multiplying, twice a step, and
// with a few rows that copy costs as much as the multiply-adds; these kernels read X in place,
// kBlockColumns columns at a time (784 x 16 doubles: 100 KB, in L2 for the second product).
constexpr Eigen::Index kBlockColumns = 16;
bool blocked_rows(Eigen::Index rows) {
  return rows >= 2 && rows <= 12;
}

using Index = Eigen::Index;
using V4 = Eigen::Matrix<double, 4, 1>;
using MapV4 = Eigen::Map<const V4>;

// z(:, j) = A x(:, j) for w columns, as R dot products of length d with each column of x
// (at = A^T, d x R): R accumulators of 4 lanes, summed across lanes at the end.
template <int R>
void dot_columns(double* z, Index ldz, const double* at, const double* x, Index ldx, Index d,
                 Index w) {
  for (Index j = 0; j < w; ++j) {
    const double* xj = x + j * ldx;
    V4 acc[R];
    for (int i = 0; i < R; ++i) acc[i].setZero();
    Index r = 0;
    for (; r + 4 <= d; r += 4) {
      const V4 xv = MapV4(xj + r);
      for (int i = 0; i < R; ++i) acc[i] += xv.cwiseProduct(MapV4(at + i * d + r));
    }
    for (int i = 0; i < R; ++i) {
      double sum = acc[i].sum();
      for (Index q = r; q < d; ++q) sum += xj[q] * at[i * d + q];
      z[j * ldz + i] = sum;
    }
  }
}

// pt (d x R, leading dimension d) += x(:, 0..w) g(:, 0..w)^T, four rows of x at a time.
template <int R>
void rank_update(double* pt, const double* g, Index ldg, const double* x, Index ldx, Index d,
                 Index w) {
  Index r = 0;
  for (; r + 4 <= d; r += 4) {
    V4 acc[R];
    for (int i = 0; i < R; ++i) acc[i] = MapV4(pt + i * d + r);
    for (Index j = 0; j < w; ++j) {
      const V4 xv = MapV4(x + j * ldx + r);
      const double* gj = g + j * ldg;
      for (int i = 0; i < R; ++i) acc[i] += xv * gj[i];
    }
    for (int i = 0; i < R; ++i) Eigen::Map<V4>(pt + i * d + r) = acc[i];
  }
  for (; r < d; ++r)
    for (Index j = 0; j < w; ++j)
      for (int i = 0; i < R; ++i) pt[i * d + r] += x[j * ldx + r] * g[j * ldg + i];
}

struct BlockedKernels {
  void (*dots)(double*, Index, const double*, const double*, Index, Index, Index);
  void (*update)(double*, const double*, Index, const double*, Index, Index, Index);
};

template <int... R>
constexpr std::array<BlockedKernels, sizeof...(R)> blocked_table(std::integer_sequence<int, R...>) {
  return {BlockedKernels{&dot_columns<R + 2>, &rank_update<R + 2>}...};
}
constexpr auto kBlocked = blocked_table(std::make_integer_sequence<int, 11>{});  // 2 to 12 rows

}  // namespace

void DataPass::bind(Eigen::Index rows, const Eigen::MatrixXd& X) {
  X_ = &X;
  const Eigen::Index d = X.rows(), n = X.cols();
  Eigen::Index slices = 1;
  const double work = double(rows) * double(d) * double(n);
  if (work >= 2 * kSliceWork) {
    slices = std::clamp<Eigen::Index>(
        std::min(static_cast<Eigen::Index>(work / kSliceWork), n / kMinSliceColumns), 1,
        kMaxSlices);
    const double per_slice = 8.0 * double(rows) * double(d);
    while (slices > 1 && per_slice * double(slices) > kMaxPartialBytes) --slices;
  }
  bounds_.resize(slices + 1);
  for (Eigen::Index s = 0; s <= slices; ++s) bounds_[s] = n * s / slices;
  partial_.assign(slices > 1 ? slices : 0, Eigen::MatrixXd(rows, d));
  const bool blocked = slices > 1 && blocked_rows(rows);
  at_.resize(blocked ? d : 0, blocked ? rows : 0);
  partial_t_.assign(blocked ? slices : 0, Eigen::MatrixXd(d, rows));
}

void DataPass::for_slices(void (*task)(void*, int), void* ctx) {
  if (pool_ != nullptr) {
    pool_->run(slices(), task, ctx);
  } else {
    for (int s = 0; s < slices(); ++s) task(ctx, s);
  }
}

void DataPass::times(const Eigen::Ref<const Eigen::MatrixXd>& A, Eigen::Ref<Eigen::MatrixXd> out) {
  if (slices() == 1) {
    multiply(out, A, *X_);
    return;
  }
  in_ = &A;
  out_ = &out;
  for_slices(
      [](void* ctx, int s) {
        auto& self = *static_cast<DataPass*>(ctx);
        const Eigen::Index lo = self.bounds_[s], w = self.bounds_[s + 1] - lo;
        self.out_->middleCols(lo, w).noalias() = *self.in_ * self.X_->middleCols(lo, w);
      },
      this);
}

void DataPass::times_transposed(const Eigen::Ref<const Eigen::MatrixXd>& G,
                                Eigen::Ref<Eigen::MatrixXd> out) {
  if (slices() == 1) {
    multiply(out, G, X_->transpose());
    return;
  }
  in_ = &G;
  for_slices(
      [](void* ctx, int s) {
        auto& self = *static_cast<DataPass*>(ctx);
        const Eigen::Index lo = self.bounds_[s], w = self.bounds_[s + 1] - lo;
        self.partial_[s].noalias() =
            self.in_->middleCols(lo, w) * self.X_->middleCols(lo, w).transpose();
      },
      this);
  out = partial_[0];
  for (int s = 1; s < slices(); ++s) out += partial_[s];
}

void DataPass::times_then_transposed(const Eigen::Ref<const Eigen::MatrixXd>& A,
                                     Eigen::Ref<Eigen::MatrixXd> AX,
                                     const Eigen::Ref<const Eigen::MatrixXd>& G,
                                     Eigen::Ref<Eigen::MatrixXd> GXt, Between between, void* ctx) {
  if (slices() == 1) {
    multiply(AX, A, *X_);
    between(ctx, 0, 0, X_->cols());
    multiply(GXt, G, X_->transpose());
    return;
  }
  in_ = &A;
  out_ = &AX;
  in2_ = &G;
  between_ = between;
  between_ctx_ = ctx;
  if (at_.cols() == A.rows()) {
    at_ = A.transpose();
    for_slices(
        [](void* c, int s) {
          auto& self = *static_cast<DataPass*>(c);
          const BlockedKernels& k = kBlocked[self.at_.cols() - 2];
          const Eigen::MatrixXd& X = *self.X_;
          const Index d = X.rows(), end = self.bounds_[s + 1];
          Eigen::MatrixXd& pt = self.partial_t_[s];
          pt.setZero();
          for (Index lo = self.bounds_[s]; lo < end; lo += kBlockColumns) {
            const Index w = std::min(kBlockColumns, end - lo);
            k.dots(self.out_->col(lo).data(), self.out_->outerStride(), self.at_.data(),
                   X.col(lo).data(), X.outerStride(), d, w);
            self.between_(self.between_ctx_, s, lo, w);
            k.update(pt.data(), self.in2_->col(lo).data(), self.in2_->outerStride(),
                     X.col(lo).data(), X.outerStride(), d, w);
          }
        },
        this);
    GXt = partial_t_[0].transpose();
    for (int s = 1; s < slices(); ++s) GXt += partial_t_[s].transpose();
    return;
  }
  for_slices(
      [](void* c, int s) {
        auto& self = *static_cast<DataPass*>(c);
        const Eigen::Index lo = self.bounds_[s], w = self.bounds_[s + 1] - lo;
        self.out_->middleCols(lo, w).noalias() = *self.in_ * self.X_->middleCols(lo, w);
        self.between_(self.between_ctx_, s, lo, w);
        self.partial_[s].noalias() =
            self.in2_->middleCols(lo, w) * self.X_->middleCols(lo, w).transpose();
      },
      this);
  GXt = partial_[0];
  for (int s = 1; s < slices(); ++s) GXt += partial_[s];
}

}  // namespace dln
