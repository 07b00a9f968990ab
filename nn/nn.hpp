/// \file
/// \brief Everything in nn/ in one include.
/// \ingroup modules
///
/// Everything in nn/ in one include: modules and their containers, layers and the
/// interface the recurrent ones share, initialisers, optimizers and learning-rate schedulers, save/load.
#pragma once

// The parts, one folder each: layers/ (Module, containers, Linear, Embedding, RNN, LSTM, GRU,
// heads, attention, encoder-decoder, losses, init), optim/ (optimizers, schedulers), data/ (padding,
// text, time series, the CMU pronouncing dictionary), train/ (truncated BPTT, sampling, decoding,
// metrics, progress), io/ (.npz files, checkpoints).
#include "layers/attention.hpp"
#include "layers/containers.hpp"
#include "layers/gru.hpp"
#include "layers/heads.hpp"
#include "layers/init.hpp"
#include "layers/linear.hpp"
#include "layers/loss.hpp"
#include "layers/lstm.hpp"
#include "layers/module.hpp"
#include "layers/recurrent_layer.hpp"
#include "layers/rnn.hpp"
#include "layers/seq2seq.hpp"
#include "optim/optim.hpp"
#include "optim/scheduler.hpp"
#include "data/cmudict.hpp"
#include "data/sequence.hpp"
#include "data/text.hpp"
#include "data/timeseries.hpp"
#include "train/decode.hpp"
#include "train/metrics.hpp"
#include "train/progress.hpp"
#include "train/sample.hpp"
#include "train/tbptt.hpp"
#include "io/checkpoint.hpp"
#include "io/serialize.hpp"
