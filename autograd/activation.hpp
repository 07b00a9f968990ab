// tapegrad: activation functions.
// Part of the op library (ops.hpp includes every family); implemented in activation.cpp.
#pragma once

#include <vector>

#include "tensor.hpp"

namespace tapegrad {

// ---- activations ------------------------------------------------------------
Tensor tanh(const Tensor& x);
Tensor sigmoid(const Tensor& x);
Tensor relu(const Tensor& x);  // gradient 0 at x = 0, as PyTorch

}  // namespace tapegrad
