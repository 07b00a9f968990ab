/// \file
/// \brief Elementwise arithmetic with NumPy broadcasting, its operators, clamping and selection.
/// \ingroup ops
///
/// Elementwise math with NumPy broadcasting: arithmetic and its operators, exp/log/pow/sqrt,
/// abs, clamping, maximum/minimum and where. Part of the op library (ops.hpp includes every family);
/// implemented in elementwise.cpp.
#pragma once

#include <vector>

#include "tensor.hpp"

namespace tapegrad {

/// \addtogroup ops
/// @{

// ---- elementwise arithmetic, NumPy broadcasting ----------------------------
/// Binary ops take tensors of one dtype whose shapes broadcast ([B, H] with [H], [B, 1] with [1, H],
/// anything with a 0-d scalar); a broadcast input's gradient is summed back to its own shape.
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);  ///< a - b, broadcasting
Tensor mul(const Tensor& a, const Tensor& b);  ///< a * b, broadcasting
Tensor div(const Tensor& a, const Tensor& b);  ///< a / b, broadcasting (IEEE: x / 0 = +-inf or NaN)
Tensor neg(const Tensor& x);  ///< -x
Tensor exp(const Tensor& x);  ///< e^x; gradient e^x
Tensor log(const Tensor& x);   ///< log(0) = -inf, log(<0) = NaN, as IEEE
Tensor sqrt(const Tensor& x);  ///< sqrt(0) = 0 with gradient +inf, sqrt(<0) = NaN (as PyTorch)
Tensor abs(const Tensor& x);   ///< gradient sign(x), 0 at x = 0 (as PyTorch)

/// x^p; gradient p x^(p-1), and 0 where p = 0 (so x = 0, p = 0 gives 0, not NaN).
Tensor pow(const Tensor& x, double exponent);
/// x^p elementwise with a tensor exponent, broadcasting. Gradients: p x^(p-1) for x (0 where p = 0)
/// and y log(x) for p. At x = 0 the gradient for p is 0 where p >= 0 (as PyTorch); for x < 0 it is
/// NaN (log x is undefined there; the value itself is finite for integral p), so keep x > 0 wherever
/// the exponent is learnt.
Tensor pow(const Tensor& x, const Tensor& p);

// ---- clamping, maximum/minimum, selection -----------------------------------
/// Limits x to [min, max]; pass -INFINITY or INFINITY for one side. The gradient is 1 where
/// min <= x <= max (bounds included, as PyTorch) and 0 outside. NaN stays NaN, with gradient 0.
/// min > max, or a NaN bound, is a ValueError.
Tensor clamp(const Tensor& x, double min, double max);
Tensor clamp_min(const Tensor& x, double min);  ///< clamp(x, min, INFINITY)
Tensor clamp_max(const Tensor& x, double max);  ///< clamp(x, -INFINITY, max)
/// The larger (smaller) of a and b, broadcasting. The gradient goes to the input that was chosen;
/// on a tie (a == b) it is split equally, half to each, as PyTorch does. NaN propagates: if either
/// is NaN the result is NaN and the whole gradient goes to the NaN input (to a when both are).
Tensor maximum(const Tensor& a, const Tensor& b);
Tensor minimum(const Tensor& a, const Tensor& b);  ///< the smaller of a and b, as maximum
/// mask ? a : b, elementwise, broadcasting over all three. mask may have either dtype: any nonzero
/// element (NaN included) is true. mask gets no gradient; a gets g where the mask is true, b elsewhere.
Tensor where(const Tensor& mask, const Tensor& a, const Tensor& b);
/// A plain number in place of a or b takes the other's dtype (where(mask, scores, -1e9) works in
/// float32 and float64 alike) and gets no gradient.
Tensor where(const Tensor& mask, const Tensor& a, double b);
Tensor where(const Tensor& mask, double a, const Tensor& b);  ///< a is a number in b's dtype

// ---- operators ----------------------------------------------------------------
/// add(a, b). In the operators, a plain number combines with a tensor of either dtype, in that
/// tensor's dtype.
Tensor operator+(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a, const Tensor& b);  ///< sub(a, b)
Tensor operator*(const Tensor& a, const Tensor& b);  ///< mul(a, b)
Tensor operator/(const Tensor& a, const Tensor& b);  ///< div(a, b)
Tensor operator-(const Tensor& x);  ///< neg(x)
Tensor operator+(const Tensor& a, double b);  ///< a + b, b in a's dtype
Tensor operator+(double a, const Tensor& b);  ///< a + b, a in b's dtype
Tensor operator-(const Tensor& a, double b);  ///< a - b, b in a's dtype
Tensor operator-(double a, const Tensor& b);  ///< a - b, a in b's dtype
Tensor operator*(const Tensor& a, double b);  ///< a * b, b in a's dtype
Tensor operator*(double a, const Tensor& b);  ///< a * b, a in b's dtype
Tensor operator/(const Tensor& a, double b);  ///< a / b, b in a's dtype
Tensor operator/(double a, const Tensor& b);  ///< a / b, a in b's dtype

/// @}
}  // namespace tapegrad
