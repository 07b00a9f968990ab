/// \file
/// \brief Activation functions, elementwise, with PyTorch's values and gradients.
/// \ingroup ops
///
/// Activation functions, elementwise. Each keeps PyTorch's value and gradient conventions
/// at its kinks, so a model trained here and one trained in PyTorch agree.
/// Part of the op library (ops.hpp includes every family); implemented in activation.cpp.
#pragma once

#include <vector>

#include "tensor.hpp"

namespace tapegrad {

/// \addtogroup ops
/// @{

// ---- activations ------------------------------------------------------------
Tensor tanh(const Tensor& x);  ///< hyperbolic tangent; gradient 1 - tanh(x)^2
Tensor sigmoid(const Tensor& x);  ///< 1 / (1 + e^-x), stable for large |x| of either sign
/// max(x, 0); gradient 1 for x > 0 and 0 for x <= 0 (0 at x = 0, as PyTorch). relu(NaN) = NaN,
/// with gradient 0.
Tensor relu(const Tensor& x);
/// x for x > 0, negative_slope * x otherwise; gradient 1 or negative_slope (negative_slope at 0).
Tensor leaky_relu(const Tensor& x, double negative_slope = 0.01);
/// clamp(x, min, max) with PyTorch's hardtanh gradient: 1 strictly inside (min, max), 0 at and beyond
/// the bounds (clamp counts the bounds as inside). min > max is a ValueError.
Tensor hardtanh(const Tensor& x, double min = -1.0, double max = 1.0);
/// log(1 + e^(beta x)) / beta, computed without overflow for any x; where beta x > threshold it is x
/// itself (gradient 1), as PyTorch. Gradient sigmoid(beta x) elsewhere. beta must be > 0 (ValueError).
Tensor softplus(const Tensor& x, double beta = 1.0, double threshold = 20.0);

/// @}
}  // namespace tapegrad
