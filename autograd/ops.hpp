/// \file
/// \brief Every differentiable operation in one include.
/// \ingroup ops
///
/// The differentiable operations. Each works in float32 and float64 (both inputs of a
/// binary op must share a dtype), checks its inputs on entry and throws a tapegrad::Error naming the
/// op and the shapes. Recorded on the active tape when an input requires grad. Axes may be negative
/// (counted from the end). Shapes in comments: [..] any leading axes.
#pragma once

#include "activation.hpp"
#include "elementwise.hpp"
#include "functional.hpp"
#include "index.hpp"
#include "linalg.hpp"
#include "recurrent.hpp"
#include "reduce.hpp"
#include "shape.hpp"
