// tapegrad: the differentiable operations. Each works in float32 and float64 (both inputs of a
// binary op must share a dtype), checks its inputs on entry and throws a tapegrad::Error naming the
// op and the shapes. Recorded on the active tape when an input requires grad. Axes may be negative
// (counted from the end). Shapes in comments: [..] any leading axes.
#pragma once

#include <vector>

#include "tensor.hpp"

namespace tapegrad {

// ---- elementwise arithmetic, NumPy broadcasting (ops_elementwise.cpp) ----------------------------
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

// ---- activations (ops_activation.cpp) ------------------------------------------------------------
Tensor tanh(const Tensor& x);
Tensor sigmoid(const Tensor& x);
Tensor relu(const Tensor& x);  // gradient 0 at x = 0, as PyTorch

// ---- reductions (ops_reduce.cpp) -----------------------------------------------------------------
Tensor sum(const Tensor& x);                                        // all elements -> scalar []
Tensor sum(const Tensor& x, long axis, bool keepdims = false);
Tensor mean(const Tensor& x);                                       // all elements -> scalar []
Tensor mean(const Tensor& x, long axis, bool keepdims = false);

// ---- shape (ops_shape.cpp) -----------------------------------------------------------------------
// New shape with the same number of elements; one entry may be -1 (inferred).
Tensor reshape(const Tensor& x, const std::vector<long>& shape);
// Swap two axes (default: the last two, the matrix transpose).
Tensor transpose(const Tensor& x, long axis0 = -2, long axis1 = -1);
// Index `index` along `axis`, dropping that axis: select(x [T,B,F], 0, t) -> [B,F].
// Its backward adds into one gradient buffer of x, never a full-size zero tensor per call.
Tensor select(const Tensor& x, long axis, long index);
// Join tensors of equal shape along a new axis: n x [B,H] -> [n,B,H] for axis 0.
Tensor stack(const std::vector<Tensor>& xs, long axis = 0);
// Join tensors along an existing axis; all other axes must agree.
Tensor concat(const std::vector<Tensor>& xs, long axis = -1);

// ---- linear algebra (ops_linalg.cpp) -------------------------------------------------------------
// [M,K] @ [K,N] -> [M,N];  [..,M,K] @ [K,N] -> [..,M,N] (one GEMM over the flattened leading axes);
// [B,M,K] @ [B,K,N] -> [B,M,N] (batched). Through BLAS gemm.
Tensor matmul(const Tensor& a, const Tensor& b);

}  // namespace tapegrad
