/// \file
/// \brief User-defined differentiable functions with a hand-written backward.
/// \ingroup tape
///
/// User-defined differentiable functions. For an operation that is not (or should not be)
/// composed from existing ops: give its output value and a backward that maps the output gradient
/// to input gradients. The engine records it like any op and checks each returned gradient's shape
/// and dtype against its input. Prove a custom backward with gradcheck.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "tensor.hpp"

namespace tapegrad {

/// \addtogroup tape
/// @{

/// Returns one gradient per input, in order; an undefined Tensor() means "no gradient" for that input.
/// Called with no tape recording, so it may use any ops freely.
using CustomBackward = std::function<std::vector<Tensor>(const Tensor& grad_output, const std::vector<Tensor>& inputs,
                                                         const Tensor& output)>;

/// Records `output` (a value computed by the caller from `inputs`) as the result of op `name`.
Tensor custom_op(std::string name, const std::vector<Tensor>& inputs, const Tensor& output, CustomBackward backward);

/// @}
}  // namespace tapegrad
