// tapegrad: everything in autograd/ in one include: Tensor, Tape, the ops, custom ops, gradcheck.
#pragma once

#include "function.hpp"
#include "gradcheck.hpp"
#include "ops.hpp"
#include "tape.hpp"
#include "tensor.hpp"
