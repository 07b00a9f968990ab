// tapegrad: matrix products through BLAS.
// Part of the op library (ops.hpp includes every family); implemented in linalg.cpp.
#pragma once

#include <vector>

#include "tensor.hpp"

namespace tapegrad {

// ---- linear algebra -------------------------------------------------------------
// [M,K] @ [K,N] -> [M,N];  [..,M,K] @ [K,N] -> [..,M,N] (one GEMM over the flattened leading axes);
// [B,M,K] @ [B,K,N] -> [B,M,N] (batched). Through BLAS gemm.
Tensor matmul(const Tensor& a, const Tensor& b);

}  // namespace tapegrad
