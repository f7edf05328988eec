#include "dln/core/multiply.hpp"

#include <array>
#include <utility>

namespace dln::detail {
namespace {

using Index = Eigen::Index;

// J output columns at a time, each an R-vector of accumulators: J * ceil(R / 4) independent
// chains of fused multiply-adds, enough to hide their latency, few enough to stay in registers.
template <int R, int J, bool Subtract>
void columns(double* out, Index ldo, const double* a, Index lda, const double* b, Index b_rs,
             Index b_cs, Index p, Index n) {
  using V = Eigen::Matrix<double, R, 1>;
  using Col = Eigen::Map<const V>;
  const auto store = [&](Index j, const V& acc) {
    Eigen::Map<V> o(out + j * ldo);
    if constexpr (Subtract) {
      o -= acc;
    } else {
      o = acc;
    }
  };
  Index j = 0;
  for (; j + J <= n; j += J) {
    V acc[J];
    for (int c = 0; c < J; ++c) acc[c].setZero();
    for (Index k = 0; k < p; ++k) {
      const Col ak(a + k * lda);
      for (int c = 0; c < J; ++c) acc[c] += ak * b[k * b_rs + (j + c) * b_cs];
    }
    for (int c = 0; c < J; ++c) store(j + c, acc[c]);
  }
  for (; j < n; ++j) {
    V acc = V::Zero();
    for (Index k = 0; k < p; ++k) acc += Col(a + k * lda) * b[k * b_rs + j * b_cs];
    store(j, acc);
  }
}

using Kernel = void (*)(double*, Index, const double*, Index, const double*, Index, Index, Index,
                        Index);

template <int R, bool Subtract>
constexpr Kernel kernel() {
  return &columns<R, (R <= 8 ? 4 : 2), Subtract>;
}

template <bool Subtract, int... R>
constexpr auto table(std::integer_sequence<int, R...>) {
  return std::array<Kernel, sizeof...(R)>{kernel<R + 2, Subtract>()...};
}

constexpr auto kAssign = table<false>(std::make_integer_sequence<int, 15>{});
constexpr auto kSubtract = table<true>(std::make_integer_sequence<int, 15>{});

// A row-strided left factor (a transpose) is packed column by column first.
constexpr Index kPackDoubles = 4096;

}  // namespace

bool small_product(double* out, Index ldo, const double* a, Index a_rs, Index a_cs, const double* b,
                   Index b_rs, Index b_cs, Index m, Index p, Index n, bool subtract) {
  if (m < 2 || m > 16) return false;
  const Kernel k = (subtract ? kSubtract : kAssign)[m - 2];
  if (a_rs == 1) {
    k(out, ldo, a, a_cs, b, b_rs, b_cs, p, n);
    return true;
  }
  if (m * p > kPackDoubles) return false;
  alignas(64) double packed[kPackDoubles];
  for (Index c = 0; c < p; ++c)
    for (Index i = 0; i < m; ++i) packed[i + c * m] = a[i * a_rs + c * a_cs];
  k(out, ldo, packed, m, b, b_rs, b_cs, p, n);
  return true;
}

}  // namespace dln::detail
