/// \file
/// \brief Everything in autograd/ in one include.
/// \ingroup tape
///
/// Everything in autograd/ in one include: Tensor, Tape, the ops, random numbers, custom
/// ops, gradcheck.
#pragma once

#include "function.hpp"
#include "gradcheck.hpp"
#include "ops.hpp"
#include "random.hpp"
#include "tape.hpp"
#include "tensor.hpp"
