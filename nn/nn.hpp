// tapegrad::nn: everything in nn/ in one include: modules and their containers, layers,
// initialisers, optimizers and learning-rate schedulers, save/load.
#pragma once

#include "checkpoint.hpp"
#include "containers.hpp"
#include "gru.hpp"
#include "heads.hpp"
#include "init.hpp"
#include "linear.hpp"
#include "loss.hpp"
#include "lstm.hpp"
#include "metrics.hpp"
#include "module.hpp"
#include "optim.hpp"
#include "progress.hpp"
#include "rnn.hpp"
#include "sample.hpp"
#include "scheduler.hpp"
#include "sequence.hpp"
#include "serialize.hpp"
#include "tbptt.hpp"
#include "text.hpp"
#include "timeseries.hpp"
