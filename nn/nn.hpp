// tapegrad::nn: everything in nn/ in one include: modules, layers, optimizers, save/load.
#pragma once

#include "heads.hpp"
#include "linear.hpp"
#include "loss.hpp"
#include "module.hpp"
#include "optim.hpp"
#include "rnn.hpp"
#include "serialize.hpp"
