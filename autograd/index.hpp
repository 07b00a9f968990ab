// tapegrad: index results as values. LongTensor (int64) holds ids, targets, lengths and the indices
// argmax/topk/sort return; BoolTensor holds the masks comparisons return. Neither carries a gradient
// or lives on a tape: they are plain arrays with a Tensor-like interface (shape, reshape, slice,
// printing, .npz through nn::save_arrays), and every op that takes ids (embedding, gather,
// cross_entropy, nll_loss, one_hot, nn::Embedding) accepts a LongTensor directly. Why these are
// types of their own rather than dtypes of Tensor: docs/design.md, "Index results".
// Implemented in index.cpp.
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

// An array of T (std::int64_t or bool) with value semantics: copying copies the elements, as
// std::vector does. Use the names LongTensor and BoolTensor.
template <class T>
class IndexTensor {
public:
    using value_type = T;

    IndexTensor() = default;  // an empty 1-D array, shape [0]
    IndexTensor(xt::xarray<T> values);
    // 1-D from a list or a vector: LongTensor{3, 1, 4}, LongTensor(std::vector<std::int64_t>{...}).
    IndexTensor(std::initializer_list<T> values);
    explicit IndexTensor(const std::vector<T>& values);
    // Nested lists, as Tensor::of: LongTensor::of({{1, 2}, {3, 4}}); rows must have equal lengths.
    static IndexTensor of(std::initializer_list<std::initializer_list<T>> values);
    static IndexTensor of(std::initializer_list<std::initializer_list<std::initializer_list<T>>> values);
    // Row-major values with a shape whose product is values.size() (ValueError otherwise).
    static IndexTensor from_vector(const std::vector<T>& values, const Shape& shape);
    static IndexTensor full(const Shape& shape, T value);
    static IndexTensor zeros(const Shape& shape);
    // Joining, as the Tensor ops of the same names: the arrays must agree on every axis but `axis`
    // (concat) or on all axes (stack, along a new axis). LongTensor::concat({a, b}, 0).
    static IndexTensor concat(const std::vector<IndexTensor>& xs, long axis = -1);
    static IndexTensor stack(const std::vector<IndexTensor>& xs, long axis = 0);

    Shape shape() const;
    std::size_t dim() const;
    std::size_t size(long axis) const;  // negative axes count from the end
    std::size_t numel() const;

    // One element by its flat (row-major) index, or by one index per axis: ids.at({t, b}).
    // Out of range is a ValueError naming the index and the shape.
    T at(std::size_t flat_index) const;
    T at(std::initializer_list<std::size_t> index) const;
    T item() const;  // the single element of a one-element array
    std::vector<T> to_vector() const;  // row-major

    // The same elements in another shape (one entry may be -1), as Tensor's reshape.
    IndexTensor reshape(const std::vector<long>& shape) const;
    IndexTensor flatten() const;
    // x[start:stop:step] along axis, Python-style (as the slice op); select drops the axis.
    IndexTensor slice(long axis, long start, long stop, long step = 1) const;
    IndexTensor select(long axis, long index) const;
    IndexTensor transpose(long axis0 = -2, long axis1 = -1) const;

    // The values as a constant Tensor (no gradient) of the given dtype: ids as numbers, a mask as
    // 1 and 0, ready for where(), multiplication or a masked mean.
    Tensor to(DType dtype) const;

    // The elements as an xtensor array. The conversion is what lets a LongTensor go wherever the
    // library takes const xt::xarray<std::int64_t>& (embedding, gather, cross_entropy, ...).
    const xt::xarray<T>& array() const { return a_; }
    xt::xarray<T>& mutable_array() { return a_; }
    operator const xt::xarray<T>&() const { return a_; }

private:
    xt::xarray<T> a_ = xt::xarray<T>::from_shape({0});
};

using LongTensor = IndexTensor<std::int64_t>;
using BoolTensor = IndexTensor<bool>;

extern template class IndexTensor<std::int64_t>;
extern template class IndexTensor<bool>;

// Whether two arrays have the same shape and the same elements.
bool equal(const LongTensor& a, const LongTensor& b);
bool equal(const BoolTensor& a, const BoolTensor& b);

// Float values rounded toward zero, as PyTorch's .to(torch::kLong); NaN, infinite or out-of-range
// values are a ValueError naming the first such element.
LongTensor to_long(const Tensor& x);
// Non-zero elements (NaN included) are true.
BoolTensor to_bool(const Tensor& x);
BoolTensor to_bool(const LongTensor& x);

// Printing: "LongTensor(shape=[2, 3])" then the values, elided like Tensor's.
std::string to_string(const LongTensor& t);
std::string to_string(const BoolTensor& t);
std::ostream& operator<<(std::ostream& os, const LongTensor& t);
std::ostream& operator<<(std::ostream& os, const BoolTensor& t);

// 0, 1, ..., n-1 as a LongTensor; start, start+step, ... below stop (step != 0).
LongTensor arange_long(std::int64_t stop);
LongTensor arange_long(std::int64_t start, std::int64_t stop, std::int64_t step = 1);

// ---- searching and sorting ------------------------------------------------------------------
// The index of the largest (smallest) element along axis, the axis dropped (kept with size 1 when
// keepdim). Ties give the first index; NaN counts as larger than every number, as in PyTorch, so
// argmax finds the first NaN. An empty axis is a ValueError. Without an axis: over all elements,
// as a flat index in a 0-d LongTensor.
LongTensor argmax(const Tensor& x, long axis, bool keepdim = false);
LongTensor argmin(const Tensor& x, long axis, bool keepdim = false);
LongTensor argmax(const Tensor& x);
LongTensor argmin(const Tensor& x);

// Values (differentiable: recorded as a gather of x) and their indices in x.
struct ValuesIndices {
    Tensor values;
    LongTensor indices;
};
// The k largest (largest = false: smallest) elements along axis, in order from the most extreme;
// equal values keep their order in x (the lower index first); NaN is the largest. k may be 0 and
// at most the axis length (ValueError otherwise). Output shape: x's with axis of size k.
ValuesIndices topk(const Tensor& x, std::size_t k, long axis = -1, bool largest = true);
// Sorted along axis, ascending (or descending), stable: equal values keep their order. NaN sorts
// last ascending and first descending, as in PyTorch.
ValuesIndices sort(const Tensor& x, long axis = -1, bool descending = false);
LongTensor argsort(const Tensor& x, long axis = -1, bool descending = false);

// ---- comparisons (NumPy broadcasting; no gradient) -------------------------------------------
// IEEE semantics: every comparison with NaN is false except ne. Tensors of different float dtypes
// may be compared.
BoolTensor eq(const Tensor& a, const Tensor& b);
BoolTensor ne(const Tensor& a, const Tensor& b);
BoolTensor lt(const Tensor& a, const Tensor& b);
BoolTensor le(const Tensor& a, const Tensor& b);
BoolTensor gt(const Tensor& a, const Tensor& b);
BoolTensor ge(const Tensor& a, const Tensor& b);
BoolTensor eq(const Tensor& a, double b);
BoolTensor ne(const Tensor& a, double b);
BoolTensor lt(const Tensor& a, double b);
BoolTensor le(const Tensor& a, double b);
BoolTensor gt(const Tensor& a, double b);
BoolTensor ge(const Tensor& a, double b);
BoolTensor eq(const LongTensor& a, const LongTensor& b);
BoolTensor ne(const LongTensor& a, const LongTensor& b);
BoolTensor lt(const LongTensor& a, const LongTensor& b);
BoolTensor le(const LongTensor& a, const LongTensor& b);
BoolTensor gt(const LongTensor& a, const LongTensor& b);
BoolTensor ge(const LongTensor& a, const LongTensor& b);
BoolTensor eq(const LongTensor& a, std::int64_t b);
BoolTensor ne(const LongTensor& a, std::int64_t b);
BoolTensor lt(const LongTensor& a, std::int64_t b);
BoolTensor le(const LongTensor& a, std::int64_t b);
BoolTensor gt(const LongTensor& a, std::int64_t b);
BoolTensor ge(const LongTensor& a, std::int64_t b);
BoolTensor isnan(const Tensor& x);
BoolTensor isinf(const Tensor& x);
BoolTensor isfinite(const Tensor& x);

// Masks (broadcasting).
BoolTensor logical_and(const BoolTensor& a, const BoolTensor& b);
BoolTensor logical_or(const BoolTensor& a, const BoolTensor& b);
BoolTensor logical_xor(const BoolTensor& a, const BoolTensor& b);
BoolTensor logical_not(const BoolTensor& a);
bool any(const BoolTensor& m);           // false when empty
bool all(const BoolTensor& m);           // true when empty
std::size_t count(const BoolTensor& m);  // how many are true

// x with `value` where the mask is true. The mask broadcasts to x's shape (x does not grow).
// Gradient: g where the mask is false, 0 where it is true. value takes x's dtype.
Tensor masked_fill(const Tensor& x, const BoolTensor& mask, double value);
// where() with a BoolTensor mask (broadcasting, as where with a Tensor mask).
Tensor where(const BoolTensor& mask, const Tensor& a, const Tensor& b);
Tensor where(const BoolTensor& mask, const Tensor& a, double b);
Tensor where(const BoolTensor& mask, double a, const Tensor& b);
namespace detail {
std::vector<std::int64_t> index_list(const char* op, const LongTensor& index);  // 1-D or ShapeError
}
// index_select with a 1-D LongTensor. (A template so that index_select(x, 0, {2, 0}) still means
// the std::vector overload rather than being ambiguous.)
template <class I>
    requires std::is_same_v<I, LongTensor>
Tensor index_select(const Tensor& x, long axis, const I& index) {
    return index_select(x, axis, detail::index_list("index_select", index));
}

}  // namespace tapegrad
