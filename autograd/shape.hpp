/// \file
/// \brief Shape ops: moving, picking, joining and splitting elements.
/// \ingroup ops
///
/// Shape ops: moving, picking, joining and splitting elements without arithmetic
/// (reshape, permute, slice, index_select, embedding, gather, split, pad, broadcast_to, ...).
/// Part of the op library (ops.hpp includes every family); implemented in shape.cpp.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "tensor.hpp"

namespace tapegrad {

/// \addtogroup ops
/// @{

// ---- views of the same elements ---------------------------------------------------
/// New shape with the same number of elements; one entry may be -1 (inferred).
Tensor reshape(const Tensor& x, const std::vector<long>& shape);
/// Drop every axis of size 1: [1, B, 1, H] -> [B, H].
Tensor squeeze(const Tensor& x);
/// Drop one axis, which must have size 1 (ShapeError otherwise).
Tensor squeeze(const Tensor& x, long axis);
/// Insert an axis of size 1 before position `axis`, in [-rank-1, rank]: unsqueeze([B,H], 0) -> [1,B,H].
Tensor unsqueeze(const Tensor& x, long axis);
/// Swap two axes (default: the last two, the matrix transpose).
Tensor transpose(const Tensor& x, long axis0 = -2, long axis1 = -1);
/// Reorder the axes: output axis i is input axis axes[i]; permute([T,B,F], {1,0,2}) -> [B,T,F].
Tensor permute(const Tensor& x, const std::vector<long>& axes);
/// NumPy broadcasting to a larger shape; the gradient is summed back to x's shape.
Tensor broadcast_to(const Tensor& x, const Shape& shape);
Tensor expand(const Tensor& x, const Shape& shape);  ///< the same as broadcast_to

// ---- picking elements -------------------------------------------------------------
/// Index `index` along `axis`, dropping that axis: select(x [T,B,F], 0, t) -> [B,F].
/// Its backward adds into one gradient buffer of x, never a full-size zero tensor per call.
Tensor select(const Tensor& x, long axis, long index);
/// x[start:stop:step] along `axis`, Python-style: negative start/stop count from the end and both
/// are clamped to the axis, so an empty range gives a size-0 axis. step >= 1 (ValueError otherwise).
Tensor slice(const Tensor& x, long axis, long start, long stop, long step = 1);
/// The entries `index` along `axis`, in that order; repeats allowed (their gradients add up).
/// Every index must be in [0, size of axis).
Tensor index_select(const Tensor& x, long axis, const std::vector<std::int64_t>& index);
/// Embedding lookup: row ids[...] of table [V, E] -> [..ids.shape, E], e.g. ids [T, B] -> [T, B, E].
/// Repeated ids add their gradients into the same table row.
Tensor embedding(const Tensor& table, const xt::xarray<std::int64_t>& ids);
/// PyTorch's gather: index has x's rank and is no larger than x on every axis but `axis`;
/// out[i][j] = x[index[i][j]][j] for axis 0, out[i][j] = x[i][index[i][j]] for axis 1. Output: index's shape.
Tensor gather(const Tensor& x, long axis, const xt::xarray<std::int64_t>& index);
/// Reverse the order along `axis`.
Tensor flip(const Tensor& x, long axis);

// ---- joining and splitting --------------------------------------------------------
/// Join tensors of equal shape along a new axis: n x [B,H] -> [n,B,H] for axis 0.
Tensor stack(const std::vector<Tensor>& xs, long axis = 0);
/// Join tensors along an existing axis; all other axes must agree.
Tensor concat(const std::vector<Tensor>& xs, long axis = -1);
/// Consecutive pieces of the given sizes along `axis`; the sizes must sum to the axis length.
std::vector<Tensor> split(const Tensor& x, const std::vector<std::size_t>& sizes, long axis = 0);
/// PyTorch's chunk: pieces of ceil(len / n) along `axis`, the last one possibly smaller (so there
/// may be fewer than n pieces). A size-0 axis gives one empty piece.
std::vector<Tensor> chunk(const Tensor& x, std::size_t n, long axis = 0);
/// Constant padding along one axis: `before` and `after` entries of `value` around x.
Tensor pad(const Tensor& x, long axis, std::size_t before, std::size_t after, double value = 0);

/// @}
}  // namespace tapegrad
