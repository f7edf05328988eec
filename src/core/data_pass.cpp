#include "dln/core/data_pass.hpp"

#include <algorithm>

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

// A product of at least two slices' work is cut into slices of at least kSliceWork
// multiply-adds and kMinSliceColumns columns, at most kMaxSlices of them. Sizes alone decide,
// never the thread count.
constexpr double kSliceWork = 1 << 17;
constexpr Eigen::Index kMinSliceColumns = 64;
constexpr Eigen::Index kMaxSlices = 16;
constexpr double kMaxPartialBytes = 32.0 * (1 << 20);

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
