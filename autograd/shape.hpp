// tapegrad: shape ops: reshape, transpose, select, stack, concat.
// Part of the op library (ops.hpp includes every family); implemented in shape.cpp.
#pragma once

#include <vector>

#include "tensor.hpp"

namespace tapegrad {

// ---- shape -----------------------------------------------------------------------
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

}  // namespace tapegrad
