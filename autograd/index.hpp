/// \file
/// \brief Integer tensors (LongTensor, BoolTensor), indexing, comparisons and masks.
/// \ingroup ops
///
/// Index results as values. LongTensor (int64) holds ids, targets, lengths and the indices
/// argmax/topk/sort return; BoolTensor holds the masks comparisons return. Neither carries a gradient
/// or lives on a tape: they are plain arrays with a Tensor-like interface (shape, reshape, slice,
/// printing, .npz through nn::save_arrays), and every op that takes ids (embedding, gather,
/// cross_entropy, nll_loss, one_hot, nn::Embedding) accepts a LongTensor directly. Why these are
/// types of their own rather than dtypes of Tensor: docs/design.md, "Index results".
/// Implemented in index.cpp.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <iosfwd>
#include <string>
#include <type_traits>
#include <vector>

#include "shape.hpp"
#include "tensor.hpp"

namespace tapegrad {

/// \addtogroup ops
/// @{

/// An array of T (std::int64_t or bool) with value semantics: copying copies the elements, as
/// std::vector does. Use the names LongTensor and BoolTensor.
template <class T>
class IndexTensor {
public:
    using value_type = T;  ///< std::int64_t or bool

    IndexTensor() = default;  ///< an empty 1-D array, shape [0]
    IndexTensor(xt::xarray<T> values);  ///< takes the array as it is (any shape)
    /// 1-D from a list or a vector: LongTensor{3, 1, 4}, LongTensor(std::vector<std::int64_t>{...}).
    IndexTensor(std::initializer_list<T> values);
    explicit IndexTensor(const std::vector<T>& values);  ///< 1-D, a copy of values
    /// Nested lists, as Tensor::of: LongTensor::of({{1, 2}, {3, 4}}); rows must have equal lengths.
    static IndexTensor of(std::initializer_list<std::initializer_list<T>> values);
    /// Three levels of nesting: a 3-D array; every inner list must have the same length.
    static IndexTensor of(std::initializer_list<std::initializer_list<std::initializer_list<T>>> values);
    /// Row-major values with a shape whose product is values.size() (ValueError otherwise).
    static IndexTensor from_vector(const std::vector<T>& values, const Shape& shape);
    static IndexTensor full(const Shape& shape, T value);  ///< every element value
    static IndexTensor zeros(const Shape& shape);  ///< every element 0 (false)
    /// Joining, as the Tensor ops of the same names: the arrays must agree on every axis but `axis`
    /// (concat) or on all axes (stack, along a new axis). LongTensor::concat({a, b}, 0).
    static IndexTensor concat(const std::vector<IndexTensor>& xs, long axis = -1);
    /// Along a new axis; every array must have the same shape.
    static IndexTensor stack(const std::vector<IndexTensor>& xs, long axis = 0);

    Shape shape() const;  ///< the extent of each axis
    std::size_t dim() const;  ///< the number of axes
    std::size_t size(long axis) const;  ///< negative axes count from the end
    std::size_t numel() const;  ///< the number of elements

    /// One element by its flat (row-major) index, or by one index per axis: ids.at({t, b}).
    /// Out of range is a ValueError naming the index and the shape.
    T at(std::size_t flat_index) const;
    /// One element by one index per axis; a wrong count or an index out of range is a ValueError.
    T at(std::initializer_list<std::size_t> index) const;
    T item() const;  ///< the single element of a one-element array
    std::vector<T> to_vector() const;  ///< row-major

    /// The same elements in another shape (one entry may be -1), as Tensor's reshape.
    IndexTensor reshape(const std::vector<long>& shape) const;
    IndexTensor flatten() const;  ///< 1-D, row-major
    /// x[start:stop:step] along axis, Python-style (as the slice op); select drops the axis.
    IndexTensor slice(long axis, long start, long stop, long step = 1) const;
    /// The elements at `index` along axis, that axis dropped (negative counts from the end).
    IndexTensor select(long axis, long index) const;
    IndexTensor transpose(long axis0 = -2, long axis1 = -1) const;  ///< two axes swapped

    /// The values as a constant Tensor (no gradient) of the given dtype: ids as numbers, a mask as
    /// 1 and 0, ready for where(), multiplication or a masked mean.
    Tensor to(DType dtype) const;

    /// The elements as an xtensor array. The conversion is what lets a LongTensor go wherever the
    /// library takes const xt::xarray<std::int64_t>& (embedding, gather, cross_entropy, ...).
    const xt::xarray<T>& array() const { return a_; }
    xt::xarray<T>& mutable_array() { return a_; }  ///< the elements, writable
    operator const xt::xarray<T>&() const { return a_; }  ///< the same as array()

private:
    xt::xarray<T> a_ = xt::xarray<T>::from_shape({0});
};

/// Integer tensor: token ids, targets, lengths, indices.
using LongTensor = IndexTensor<std::int64_t>;
/// Boolean tensor: masks and comparison results.
using BoolTensor = IndexTensor<bool>;

extern template class IndexTensor<std::int64_t>;
extern template class IndexTensor<bool>;

/// Whether two arrays have the same shape and the same elements.
bool equal(const LongTensor& a, const LongTensor& b);
bool equal(const BoolTensor& a, const BoolTensor& b);  ///< the same for masks

/// Float values rounded toward zero, as PyTorch's .to(torch::kLong); NaN, infinite or out-of-range
/// values are a ValueError naming the first such element.
LongTensor to_long(const Tensor& x);
/// Non-zero elements (NaN included) are true.
BoolTensor to_bool(const Tensor& x);
BoolTensor to_bool(const LongTensor& x);  ///< non-zero ids are true

/// Printing: "LongTensor(shape=[2, 3])" then the values, elided like Tensor's.
std::string to_string(const LongTensor& t);
std::string to_string(const BoolTensor& t);  ///< "BoolTensor(shape=[..])" then the values
std::ostream& operator<<(std::ostream& os, const LongTensor& t);  ///< writes to_string(t)
std::ostream& operator<<(std::ostream& os, const BoolTensor& t);  ///< writes to_string(t)

/// 0, 1, ..., n-1 as a LongTensor; start, start+step, ... below stop (step != 0).
LongTensor arange_long(std::int64_t stop);
/// start, start+step, ... below stop (above stop when step < 0); step 0 is a ValueError.
LongTensor arange_long(std::int64_t start, std::int64_t stop, std::int64_t step = 1);

// ---- searching and sorting ------------------------------------------------------------------
/// The index of the largest (smallest) element along axis, the axis dropped (kept with size 1 when
/// keepdim). Ties give the first index; NaN counts as larger than every number, as in PyTorch, so
/// argmax finds the first NaN. An empty axis is a ValueError. Without an axis: over all elements,
/// as a flat index in a 0-d LongTensor.
LongTensor argmax(const Tensor& x, long axis, bool keepdim = false);
LongTensor argmin(const Tensor& x, long axis, bool keepdim = false);  ///< as argmax, the smallest
LongTensor argmax(const Tensor& x);  ///< over all elements: a flat index, 0-d
LongTensor argmin(const Tensor& x);  ///< over all elements: a flat index, 0-d

/// Values (differentiable: recorded as a gather of x) and their indices in x.
struct ValuesIndices {
    Tensor values;       ///< the selected elements, differentiable
    LongTensor indices;  ///< where each came from along the axis
};
/// The k largest (largest = false: smallest) elements along axis, in order from the most extreme;
/// equal values keep their order in x (the lower index first); NaN is the largest. k may be 0 and
/// at most the axis length (ValueError otherwise). Output shape: x's with axis of size k.
ValuesIndices topk(const Tensor& x, std::size_t k, long axis = -1, bool largest = true);
/// Sorted along axis, ascending (or descending), stable: equal values keep their order. NaN sorts
/// last ascending and first descending, as in PyTorch.
ValuesIndices sort(const Tensor& x, long axis = -1, bool descending = false);
LongTensor argsort(const Tensor& x, long axis = -1, bool descending = false);  ///< sort's indices only

// ---- comparisons (NumPy broadcasting; no gradient) -------------------------------------------
/// IEEE semantics: every comparison with NaN is false except ne. Tensors of different float dtypes
/// may be compared.
BoolTensor eq(const Tensor& a, const Tensor& b);
BoolTensor ne(const Tensor& a, const Tensor& b);  ///< a != b (true where either is NaN)
BoolTensor lt(const Tensor& a, const Tensor& b);  ///< a < b
BoolTensor le(const Tensor& a, const Tensor& b);  ///< a <= b
BoolTensor gt(const Tensor& a, const Tensor& b);  ///< a > b
BoolTensor ge(const Tensor& a, const Tensor& b);  ///< a >= b
BoolTensor eq(const Tensor& a, double b);  ///< a == b, against a number
BoolTensor ne(const Tensor& a, double b);  ///< a != b, against a number
BoolTensor lt(const Tensor& a, double b);  ///< a < b, against a number
BoolTensor le(const Tensor& a, double b);  ///< a <= b, against a number
BoolTensor gt(const Tensor& a, double b);  ///< a > b, against a number
BoolTensor ge(const Tensor& a, double b);  ///< a >= b, against a number
BoolTensor eq(const LongTensor& a, const LongTensor& b);  ///< a == b, on ids
BoolTensor ne(const LongTensor& a, const LongTensor& b);  ///< a != b, on ids
BoolTensor lt(const LongTensor& a, const LongTensor& b);  ///< a < b, on ids
BoolTensor le(const LongTensor& a, const LongTensor& b);  ///< a <= b, on ids
BoolTensor gt(const LongTensor& a, const LongTensor& b);  ///< a > b, on ids
BoolTensor ge(const LongTensor& a, const LongTensor& b);  ///< a >= b, on ids
BoolTensor eq(const LongTensor& a, std::int64_t b);  ///< a == b, ids against a number
BoolTensor ne(const LongTensor& a, std::int64_t b);  ///< a != b, ids against a number
BoolTensor lt(const LongTensor& a, std::int64_t b);  ///< a < b, ids against a number
BoolTensor le(const LongTensor& a, std::int64_t b);  ///< a <= b, ids against a number
BoolTensor gt(const LongTensor& a, std::int64_t b);  ///< a > b, ids against a number
BoolTensor ge(const LongTensor& a, std::int64_t b);  ///< a >= b, ids against a number
BoolTensor isnan(const Tensor& x);  ///< true where x is NaN
BoolTensor isinf(const Tensor& x);  ///< true where x is +Inf or -Inf
BoolTensor isfinite(const Tensor& x);  ///< true where x is neither NaN nor infinite

/// Masks (broadcasting).
BoolTensor logical_and(const BoolTensor& a, const BoolTensor& b);
BoolTensor logical_or(const BoolTensor& a, const BoolTensor& b);  ///< a or b, broadcasting
BoolTensor logical_xor(const BoolTensor& a, const BoolTensor& b);  ///< a xor b, broadcasting
BoolTensor logical_not(const BoolTensor& a);  ///< not a
bool any(const BoolTensor& m);           ///< false when empty
bool all(const BoolTensor& m);           ///< true when empty
std::size_t count(const BoolTensor& m);  ///< how many are true

/// x with `value` where the mask is true. The mask broadcasts to x's shape (x does not grow).
/// Gradient: g where the mask is false, 0 where it is true. value takes x's dtype.
Tensor masked_fill(const Tensor& x, const BoolTensor& mask, double value);
/// where() with a BoolTensor mask (broadcasting, as where with a Tensor mask).
Tensor where(const BoolTensor& mask, const Tensor& a, const Tensor& b);
Tensor where(const BoolTensor& mask, const Tensor& a, double b);  ///< b is a number in a's dtype
Tensor where(const BoolTensor& mask, double a, const Tensor& b);  ///< a is a number in b's dtype
namespace detail {
std::vector<std::int64_t> index_list(const char* op, const LongTensor& index);  ///< 1-D or ShapeError
}
/// index_select with a 1-D LongTensor. (A template so that index_select(x, 0, {2, 0}) still means
/// the std::vector overload rather than being ambiguous.)
template <class I>
    requires std::is_same_v<I, LongTensor>
Tensor index_select(const Tensor& x, long axis, const I& index) {
    return index_select(x, axis, detail::index_list("index_select", index));
}

/// @}
}  // namespace tapegrad
