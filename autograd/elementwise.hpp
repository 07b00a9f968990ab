// tapegrad: elementwise arithmetic with NumPy broadcasting, exp/log/pow, and the arithmetic operators.
// Part of the op library (ops.hpp includes every family); implemented in elementwise.cpp.
#pragma once

#include <vector>

#include "tensor.hpp"

namespace tapegrad {

// ---- elementwise arithmetic, NumPy broadcasting ----------------------------
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor neg(const Tensor& x);
Tensor pow(const Tensor& x, double exponent);  // x^p; gradient p x^(p-1)
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);  // log(0) = -inf, log(<0) = NaN, as IEEE

// Scalars combine with a tensor of either dtype, in that tensor's dtype.
Tensor operator+(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a, const Tensor& b);
Tensor operator*(const Tensor& a, const Tensor& b);
Tensor operator/(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& x);
Tensor operator+(const Tensor& a, double b);
Tensor operator+(double a, const Tensor& b);
Tensor operator-(const Tensor& a, double b);
Tensor operator-(double a, const Tensor& b);
Tensor operator*(const Tensor& a, double b);
Tensor operator*(double a, const Tensor& b);
Tensor operator/(const Tensor& a, double b);
Tensor operator/(double a, const Tensor& b);

}  // namespace tapegrad
