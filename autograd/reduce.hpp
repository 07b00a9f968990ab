/// \file
/// \brief Reductions: sum, mean, max/min, logsumexp and the L2 norm.
/// \ingroup ops
///
/// Reductions: sum, mean, max/min, logsumexp and the L2 norm, over all elements or over
/// chosen axes. Part of the op library (ops.hpp includes every family); implemented in reduce.cpp.
/// Axes may be negative; an axis out of range, or named twice, is a ShapeError. keepdims keeps each
/// reduced axis with size 1 ([B, H] over axis 1 -> [B, 1]) so the result broadcasts against x.
#pragma once

#include <initializer_list>
#include <vector>

#include "tensor.hpp"

namespace tapegrad {

/// \addtogroup ops
/// @{

// ---- sum and mean -------------------------------------------------------------
/// Sums accumulate in double. Over an empty axis the sum is 0 and the mean NaN (0 / 0), as NumPy.
Tensor sum(const Tensor& x);  ///< all elements -> scalar []
/// Along one axis, dropped from the shape (kept with size 1 when keepdims).
Tensor sum(const Tensor& x, long axis, bool keepdims = false);
/// Over any set of axes: sum(x [T, B, H], {0, 1}) -> [H]. An empty set reduces nothing (a copy of x,
/// as NumPy's axis=()); sum(x) reduces everything. The initializer_list overloads make a braced
/// sum(x, {}) mean "no axes" rather than axis 0.
Tensor sum(const Tensor& x, const std::vector<long>& axes, bool keepdims = false);
Tensor sum(const Tensor& x, std::initializer_list<long> axes, bool keepdims = false);  ///< as the vector form
Tensor mean(const Tensor& x);  ///< all elements -> scalar []
Tensor mean(const Tensor& x, long axis, bool keepdims = false);  ///< along one axis, as sum
Tensor mean(const Tensor& x, const std::vector<long>& axes, bool keepdims = false);  ///< over a set of axes, as sum
Tensor mean(const Tensor& x, std::initializer_list<long> axes, bool keepdims = false);  ///< as the vector form

// ---- max and min ----------------------------------------------------------------
/// The largest (smallest) element, of all elements -> scalar [] or along one axis. The gradient goes
/// to one element only: the arg-max, and on ties the FIRST occurrence in row-major order (the lowest
/// index along the axis). NaN propagates: a NaN element is the result, and takes the gradient (the
/// first NaN). A reduction over no elements (an axis of size 0) is a ShapeError: there is no identity.
Tensor max(const Tensor& x);
Tensor max(const Tensor& x, long axis, bool keepdims = false);  ///< along one axis (see max(x))
Tensor min(const Tensor& x);  ///< the smallest element, as max(x)
Tensor min(const Tensor& x, long axis, bool keepdims = false);  ///< along one axis, as max

// ---- logsumexp and norm ----------------------------------------------------------
/// log(sum(exp(x))), computed as m + log(sum(exp(x - m))) with m the max, so logits of 1000 do not
/// overflow. A row of all -inf (or an empty axis) gives -inf, not NaN, and passes no gradient; a NaN
/// element makes the result NaN. Gradient softmax(x) along the axis.
Tensor logsumexp(const Tensor& x);  ///< all elements -> scalar []
Tensor logsumexp(const Tensor& x, long axis, bool keepdims = false);  ///< along one axis
/// The L2 norm sqrt(sum(x^2)), squares accumulated in double. Gradient x / norm, and 0 where the norm
/// is 0 (rather than NaN), so a zero vector is a valid point, e.g. in gradient clipping.
Tensor norm(const Tensor& x);  ///< all elements -> scalar []
Tensor norm(const Tensor& x, long axis, bool keepdims = false);  ///< along one axis

/// @}
}  // namespace tapegrad
