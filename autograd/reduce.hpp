// tapegrad: reductions.
// Part of the op library (ops.hpp includes every family); implemented in reduce.cpp.
#pragma once

#include <vector>

#include "tensor.hpp"

namespace tapegrad {

// ---- reductions -----------------------------------------------------------------
Tensor sum(const Tensor& x);                                        // all elements -> scalar []
Tensor sum(const Tensor& x, long axis, bool keepdims = false);
Tensor mean(const Tensor& x);                                       // all elements -> scalar []
Tensor mean(const Tensor& x, long axis, bool keepdims = false);

}  // namespace tapegrad
