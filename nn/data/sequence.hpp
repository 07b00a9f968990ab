/// \file
/// \brief Batches of sequences of different lengths: padding, lengths and masks.
/// \ingroup data
///
/// Batches of sequences of different lengths for the RNN: padding to one [T, B] id
/// array with the lengths and a 1/0 mask (for the loss), grouping sequences of similar length so
/// little padding is needed, and seeded shuffling.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "../../autograd/random.hpp"
#include "../../autograd/tensor.hpp"

namespace tapegrad::nn {

/// \addtogroup data
/// @{

/// Options of pad_sequences().
struct PadOptions {
    std::int64_t pad_value = 0;  ///< written at padded positions of ids
    std::size_t max_length = 0;  ///< 0 = no truncation
    /// Which end a sequence longer than max_length loses. back keeps its first max_length items;
    /// front keeps its last max_length items (the most recent ones, e.g. for a forecaster).
    enum class Truncate {
        back,  ///< keep the first max_length items
        front  ///< keep the last max_length items
    } truncate = Truncate::back;  ///< which end a sequence longer than max_length loses
    bool batch_first = false;  ///< [B, T] ids and mask instead of [T, B]
};

/// A batch of padded sequences, from pad_sequences().
struct PaddedBatch {
    xt::xarray<std::int64_t> ids;       ///< [T, B] (or [B, T] with batch_first), T = the longest length
    std::vector<std::int64_t> lengths;  ///< [B], after truncation, each in [1, T]: the RNN's `lengths`
    Tensor mask;                        ///< float32, ids' layout: 1 at real items, 0 at padding
};

/// Pads (and truncates) the sequences into one batch, sequence b in column b (row b with
/// batch_first). An empty list, or an empty sequence (an RNN length must be >= 1), is a ValueError.
PaddedBatch pad_sequences(const std::vector<std::vector<std::int64_t>>& seqs, PadOptions options = {});

/// Groups the indices 0..n-1 into batches of batch_size (the last may be smaller) so each batch holds
/// sequences of similar length: indices are sorted by length, longest first (ties in index order),
/// cut into consecutive batches, and with shuffle the order of the batches (not their contents) is
/// shuffled with gen. Each batch is sorted longest first. batch_size 0 or no lengths: ValueError.
std::vector<std::vector<std::size_t>> bucket_by_length(const std::vector<std::size_t>& lengths,
                                                       std::size_t batch_size, Generator& gen,
                                                       bool shuffle = true);

/// A permutation of 0..n-1 by Fisher-Yates with gen.randint: the same seed gives the same order.
std::vector<std::size_t> shuffled_indices(std::size_t n, Generator& gen);

/// @}
}  // namespace tapegrad::nn
