/// \file
/// \brief Matrix products through BLAS: matmul, the fused linear op, outer.
/// \ingroup ops
///
/// Matrix products through BLAS: matmul, the fused linear layer op, outer.
/// Part of the op library (ops.hpp includes every family); implemented in linalg.cpp.
#pragma once

#include <vector>

#include "tensor.hpp"

namespace tapegrad {

/// \addtogroup ops
/// @{

// ---- linear algebra -------------------------------------------------------------
/// [M,K] @ [K,N] -> [M,N];  [..,M,K] @ [K,N] -> [..,M,N] (one GEMM over the flattened leading axes);
/// [B,M,K] @ [B,K,N] -> [B,M,N] (batched). Through BLAS gemm.
Tensor matmul(const Tensor& a, const Tensor& b);
/// PyTorch's F.linear: x [.., in] @ weight [out, in]^T + bias [out] -> [.., out]. One GEMM with the
/// bias added in the same pass; pass an undefined Tensor() for no bias. The bias may also be a whole
/// addend of the output's shape [.., out] (as `torch.addmm`'s input): a cell whose input projection
/// was computed before its time loop writes `linear(h, w_hh, select(xw, 0, t))` and the step needs
/// no separate add.
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());
/// Outer product: a [M], b [N] -> [M, N] with out[i][j] = a[i] b[j].
Tensor outer(const Tensor& a, const Tensor& b);

/// @}
}  // namespace tapegrad
