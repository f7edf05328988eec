// multiply(dst, a, b): dst = a b without a temporary, each product the way that is fastest at
// its size. Small products are most of a step of a narrow net (its layer matrices, end-to-end
// matrix and gradients). Eigen's GEMM packs both operands and its coefficient-wise product
// runs one long dependency chain per coefficient; at these sizes either costs 2 to 4 times a
// kernel that keeps a few output columns in registers (docs/performance.md, "Small products").
#pragma once

#include <Eigen/Core>
#include <type_traits>

namespace dln {
namespace detail {

// out = a b (or out -= a b) for m x p times p x n, m in [2, 16]: out(i, j) at out[i + j * ldo],
// a(i, k) at a[i * a_rs + k * a_cs], b(k, j) at b[k * b_rs + j * b_cs]. Each output coefficient
// is summed over k in increasing order, whatever the strides. Returns false, having done
// nothing, for a shape it does not take (m outside [2, 16], or a row-strided a too large to
// pack on the stack).
bool small_product(double* out, Eigen::Index ldo, const double* a, Eigen::Index a_rs,
                   Eigen::Index a_cs, const double* b, Eigen::Index b_rs, Eigen::Index b_cs,
                   Eigen::Index m, Eigen::Index p, Eigen::Index n, bool subtract);

template <class X>
inline constexpr bool direct_access =
    (Eigen::internal::traits<std::remove_cv_t<std::remove_reference_t<X>>>::Flags &
     Eigen::DirectAccessBit) != 0;

// dst = a b or dst -= a b through small_product when the operands are plain memory and the
// shape is one it takes; false otherwise.
template <class Dst, class A, class B>
inline bool try_small_product(Dst& dst, const A& a, const B& b, bool subtract) {
  using D = std::remove_cv_t<std::remove_reference_t<Dst>>;
  if constexpr (direct_access<D> && direct_access<A> && direct_access<B> && !D::IsRowMajor) {
    if (a.rows() < 2 || a.rows() > 16 || dst.innerStride() != 1) return false;
    if constexpr (std::is_base_of_v<Eigen::PlainObjectBase<D>, D>) {
      if (!subtract) dst.resize(a.rows(), b.cols());  // nothing to do at the right size
    }
    eigen_assert(dst.rows() == a.rows() && dst.cols() == b.cols() && a.cols() == b.rows());
    return small_product(dst.data(), dst.outerStride(), a.data(), a.rowStride(), a.colStride(),
                         b.data(), b.rowStride(), b.colStride(), a.rows(), a.cols(), b.cols(),
                         subtract);
  } else {
    return false;
  }
}

// dst = a b (or dst -= a b) without a temporary. A left factor of 2 to 16 rows goes to
// small_product; other small products are evaluated coefficient by coefficient: Eigen's blocked
// GEMM packs its operands first, which costs more than the product itself below a few thousand
// multiply-adds.
template <bool Subtract, class Dst, class A, class B>
inline void product(Dst& dst, const A& a, const B& b) {
  if (try_small_product(dst, a, b, Subtract)) return;
  const auto apply = [&](const auto& ab) {
    if constexpr (Subtract) {
      dst.noalias() -= ab;
    } else {
      dst.noalias() = ab;
    }
  };
  if (a.rows() * a.cols() * b.cols() <= 4096) {
    apply(a.lazyProduct(b));
  } else {
    apply(a * b);
  }
}

}  // namespace detail

// dst = a b, the fastest way at its size (above).
template <class Dst, class A, class B>
inline void multiply(Dst&& dst, const A& a, const B& b) {
  detail::product<false>(dst, a, b);
}
// dst -= a b, the same way.
template <class Dst, class A, class B>
inline void multiply_subtract(Dst&& dst, const A& a, const B& b) {
  detail::product<true>(dst, a, b);
}

}  // namespace dln
