// LongTensor and BoolTensor, and the ops that make or take them: argmax/argmin, topk, sort,
// comparisons, masks. Values with gradients (topk's and sort's) are gathers of x, so their backward
// is gather's and nothing here needs a backward of its own.
#include "index.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <ostream>
#include <sstream>

#include <xtensor/xmanipulation.hpp>

#include "detail/op.hpp"
#include "elementwise.hpp"
#include "shape.hpp"

namespace tapegrad {

namespace {

template <class T>
constexpr const char* type_name() {
    return std::is_same_v<T, bool> ? "BoolTensor" : "LongTensor";
}

// An axis split as [outer, n, inner]: element (o, k, i) is at (o * n + k) * inner + i.
struct Lines {
    std::size_t outer = 1, n = 1, inner = 1;
    Lines(const Shape& s, std::size_t ax) : n(s[ax]) {
        for (std::size_t d = 0; d < ax; ++d) outer *= s[d];
        for (std::size_t d = ax + 1; d < s.size(); ++d) inner *= s[d];
    }
};

template <class T>
xt::xarray<T> from_nested(const char* op, const std::vector<T>& flat, const Shape& shape) {
    const std::string name = fmt::format("{}::{}", type_name<T>(), op);
    // Compared before allocating: a shape that merely claims many elements must not be allocated.
    detail::check_shape_size(name.c_str(), shape);
    std::size_t n = 1;
    for (std::size_t d : shape) n *= d;  // cannot wrap: checked just above
    if (flat.size() != n)
        throw ValueError(fmt::format("{}::{}: {} values do not fill shape {} ({} elements)", type_name<T>(), op,
                                     flat.size(), shape_str(shape), n));
    xt::xarray<T> a = detail::new_array<T>(name.c_str(), shape);
    std::copy(flat.begin(), flat.end(), a.begin());
    return a;
}

}  // namespace

// ---- IndexTensor ------------------------------------------------------------------------------
template <class T>
IndexTensor<T>::IndexTensor(xt::xarray<T> values) : a_(std::move(values)) {}

template <class T>
IndexTensor<T>::IndexTensor(std::initializer_list<T> values)
    : a_(from_nested("list", std::vector<T>(values), Shape{values.size()})) {}

template <class T>
IndexTensor<T>::IndexTensor(const std::vector<T>& values) : a_(from_nested("vector", values, Shape{values.size()})) {}

template <class T>
IndexTensor<T> IndexTensor<T>::of(std::initializer_list<std::initializer_list<T>> values) {
    const std::size_t cols = values.size() ? values.begin()->size() : 0;
    std::vector<T> flat;
    std::size_t r = 0;
    for (const auto& row : values) {
        if (row.size() != cols)
            throw ValueError(fmt::format("{}::of: row {} has {} values, row 0 has {}; rows must have equal lengths",
                                         type_name<T>(), r, row.size(), cols));
        flat.insert(flat.end(), row.begin(), row.end());
        ++r;
    }
    return IndexTensor(from_nested("of", flat, Shape{values.size(), cols}));
}

template <class T>
IndexTensor<T> IndexTensor<T>::of(std::initializer_list<std::initializer_list<std::initializer_list<T>>> values) {
    const std::size_t rows = values.size() ? values.begin()->size() : 0;
    const std::size_t cols = rows ? values.begin()->begin()->size() : 0;
    std::vector<T> flat;
    std::size_t i = 0;
    for (const auto& plane : values) {
        std::size_t j = 0;
        if (plane.size() != rows)
            throw ValueError(fmt::format("{}::of: block {} has {} rows, block 0 has {}; blocks must have equal shapes",
                                         type_name<T>(), i, plane.size(), rows));
        for (const auto& row : plane) {
            if (row.size() != cols)
                throw ValueError(fmt::format("{}::of: row [{}, {}] has {} values, row [0, 0] has {}; rows must have "
                                             "equal lengths",
                                             type_name<T>(), i, j, row.size(), cols));
            flat.insert(flat.end(), row.begin(), row.end());
            ++j;
        }
        ++i;
    }
    return IndexTensor(from_nested("of", flat, Shape{values.size(), rows, cols}));
}

template <class T>
IndexTensor<T> IndexTensor<T>::from_vector(const std::vector<T>& values, const Shape& shape) {
    return IndexTensor(from_nested("from_vector", values, shape));
}

template <class T>
IndexTensor<T> IndexTensor<T>::full(const Shape& shape, T value) {
    const std::string name = fmt::format("{}::full", type_name<T>());
    xt::xarray<T> a = detail::new_array<T>(name.c_str(), shape);
    std::fill(a.begin(), a.end(), value);
    return IndexTensor(std::move(a));
}

template <class T>
IndexTensor<T> IndexTensor<T>::zeros(const Shape& shape) {
    return full(shape, T{});
}

template <class T>
Shape IndexTensor<T>::shape() const {
    return detail::to_shape(a_.shape());
}
template <class T>
std::size_t IndexTensor<T>::dim() const {
    return a_.dimension();
}
template <class T>
std::size_t IndexTensor<T>::size(long axis) const {
    const Shape s = shape();
    return s[detail::norm_axis(type_name<T>(), axis, s)];
}
template <class T>
std::size_t IndexTensor<T>::numel() const {
    return a_.size();
}

template <class T>
T IndexTensor<T>::at(std::size_t flat_index) const {
    if (flat_index >= a_.size())
        throw ValueError(fmt::format("{}::at: flat index {} is out of range for shape {} ({} elements)", type_name<T>(),
                                     flat_index, shape_str(shape()), a_.size()));
    return a_.data()[flat_index];
}

template <class T>
T IndexTensor<T>::at(std::initializer_list<std::size_t> index) const {
    const Shape s = shape();
    const std::vector<std::size_t> idx(index);
    if (idx.size() != s.size())
        throw ValueError(fmt::format("{}::at: {} indices for shape {}; give one per axis", type_name<T>(), idx.size(),
                                     shape_str(s)));
    std::size_t flat = 0;
    for (std::size_t d = 0; d < s.size(); ++d) {
        if (idx[d] >= s[d])
            throw ValueError(fmt::format("{}::at: index {} is out of range for axis {} of shape {}", type_name<T>(),
                                         idx[d], d, shape_str(s)));
        flat = flat * s[d] + idx[d];
    }
    return a_.data()[flat];
}

template <class T>
T IndexTensor<T>::item() const {
    if (a_.size() != 1)
        throw ValueError(fmt::format("{}::item: needs exactly one element, the shape is {}", type_name<T>(),
                                     shape_str(shape())));
    return a_.data()[0];
}

template <class T>
std::vector<T> IndexTensor<T>::to_vector() const {
    return std::vector<T>(a_.begin(), a_.end());
}

template <class T>
IndexTensor<T> IndexTensor<T>::reshape(const std::vector<long>& new_shape) const {
    const std::string op = fmt::format("{}::reshape", type_name<T>());
    xt::xarray<T> a = a_;
    a.reshape(detail::resolve_reshape(op.c_str(), shape(), new_shape));
    return IndexTensor(std::move(a));
}

template <class T>
IndexTensor<T> IndexTensor<T>::flatten() const {
    return reshape({-1});
}

template <class T>
IndexTensor<T> IndexTensor<T>::slice(long axis, long start, long stop, long step) const {
    Shape s = shape();
    const std::size_t ax = detail::norm_axis("slice", axis, s);
    if (step < 1)
        throw ValueError(fmt::format("{}::slice: {} along axis {} with step {}: the step must be >= 1", type_name<T>(),
                                     shape_str(s), axis, step));
    const long len = static_cast<long>(s[ax]);
    auto clamp = [len](long b) { return std::clamp(b < 0 ? b + len : b, 0L, len); };
    const long b = clamp(start), e = clamp(stop);
    const std::size_t count = e > b ? static_cast<std::size_t>(1 + (e - b - 1) / step) : 0;
    const Lines in(s, ax);
    s[ax] = count;
    xt::xarray<T> y = xt::xarray<T>::from_shape(s);
    const T* px = a_.data();
    T* py = y.data();
    for (std::size_t o = 0; o < in.outer; ++o)
        for (std::size_t k = 0; k < count; ++k) {
            const std::size_t src = static_cast<std::size_t>(b + static_cast<long>(k) * step);
            std::copy_n(px + (o * in.n + src) * in.inner, in.inner, py + (o * count + k) * in.inner);
        }
    return IndexTensor(std::move(y));
}

template <class T>
IndexTensor<T> IndexTensor<T>::select(long axis, long index) const {
    const Shape s = shape();
    const std::size_t ax = detail::norm_axis("select", axis, s);
    const long len = static_cast<long>(s[ax]);
    if (index < -len || index >= len)
        throw ValueError(fmt::format("{}::select: index {} is out of range for axis {} of shape {} (valid: {} to {})",
                                     type_name<T>(), index, axis, shape_str(s), -len, len - 1));
    const long i = index < 0 ? index + len : index;
    IndexTensor one = slice(static_cast<long>(ax), i, i + 1);
    Shape out = s;
    out.erase(out.begin() + static_cast<long>(ax));
    one.a_.reshape(out);
    return one;
}

template <class T>
IndexTensor<T> IndexTensor<T>::transpose(long axis0, long axis1) const {
    const Shape s = shape();
    const std::size_t a0 = detail::norm_axis("transpose", axis0, s), a1 = detail::norm_axis("transpose", axis1, s);
    std::vector<std::size_t> perm(s.size());
    std::iota(perm.begin(), perm.end(), 0);
    std::swap(perm[a0], perm[a1]);
    xt::xarray<T> y = xt::transpose(a_, perm);
    return IndexTensor(std::move(y));
}

template <class T>
Tensor IndexTensor<T>::to(DType dtype) const {
    return detail::dispatch(dtype, [&]<class F>(F) {
        xt::xarray<F> y = xt::xarray<F>::from_shape(a_.shape());
        std::transform(a_.begin(), a_.end(), y.begin(), [](T v) { return static_cast<F>(v); });
        return Tensor(std::move(y));
    });
}

template <class T>
IndexTensor<T> IndexTensor<T>::concat(const std::vector<IndexTensor>& xs, long axis) {
    if (xs.empty()) throw ValueError(fmt::format("{}::concat: needs at least one array, got an empty list", type_name<T>()));
    Shape out = xs[0].shape();
    if (out.empty()) throw ShapeError(fmt::format("{}::concat: cannot join 0-d arrays along an axis; use stack", type_name<T>()));
    const std::size_t ax = detail::norm_axis(type_name<T>(), axis, out);
    const std::string name = fmt::format("{}::concat", type_name<T>());
    std::size_t total = 0;
    for (std::size_t i = 0; i < xs.size(); ++i) {
        Shape s = xs[i].shape();
        Shape a = s, b = out;
        if (s.size() == out.size()) a[ax] = b[ax] = 0;
        if (a != b)
            throw ShapeError(fmt::format("{}::concat: array {} has shape {}, array 0 has {}; all axes but {} must "
                                         "agree",
                                         type_name<T>(), i, shape_str(s), shape_str(xs[0].shape()), ax));
        // Sizes of empty arrays can be anything up to 2^63 and wrap when added up.
        total = detail::checked_add(name.c_str(), total, s[ax], "the concatenated size of the axis");
    }
    out[ax] = total;
    xt::xarray<T> y = detail::new_array<T>(name.c_str(), out);
    const Lines lo(out, ax);
    std::size_t at = 0;  // where along the axis the next piece starts
    for (const IndexTensor& x : xs) {
        const Lines li(x.shape(), ax);
        for (std::size_t o = 0; o < li.outer; ++o)
            std::copy_n(x.array().data() + o * li.n * li.inner, li.n * li.inner,
                        y.data() + (o * lo.n + at) * lo.inner);
        at += li.n;
    }
    return IndexTensor(std::move(y));
}

template <class T>
IndexTensor<T> IndexTensor<T>::stack(const std::vector<IndexTensor>& xs, long axis) {
    if (xs.empty()) throw ValueError(fmt::format("{}::stack: needs at least one array, got an empty list", type_name<T>()));
    const Shape s = xs[0].shape();
    const std::size_t ax = detail::norm_axis(type_name<T>(), axis, s, 1);
    std::vector<IndexTensor> parts;
    parts.reserve(xs.size());
    for (std::size_t i = 0; i < xs.size(); ++i) {
        if (xs[i].shape() != s)
            throw ShapeError(fmt::format("{}::stack: array {} has shape {}, array 0 has {}; all must be equal", type_name<T>(), i,
                                         shape_str(xs[i].shape()), shape_str(s)));
        std::vector<long> u(s.begin(), s.end());
        u.insert(u.begin() + static_cast<long>(ax), 1);
        parts.push_back(xs[i].reshape(u));
    }
    return concat(parts, static_cast<long>(ax));
}

template class IndexTensor<std::int64_t>;
template class IndexTensor<bool>;

bool equal(const LongTensor& a, const LongTensor& b) {
    return a.shape() == b.shape() && std::equal(a.array().begin(), a.array().end(), b.array().begin());
}
bool equal(const BoolTensor& a, const BoolTensor& b) {
    return a.shape() == b.shape() && std::equal(a.array().begin(), a.array().end(), b.array().begin());
}

LongTensor to_long(const Tensor& x) {
    detail::check_defined("to_long", x);
    return std::visit(
        [&](const auto& v) {
            xt::xarray<std::int64_t> y = xt::xarray<std::int64_t>::from_shape(v.shape());
            // Doubles at or above 2^63 do not fit; -2^63 itself does.
            constexpr double lim = 9223372036854775808.0;
            for (std::size_t k = 0; k < v.size(); ++k) {
                const double d = static_cast<double>(v.data()[k]);
                if (!(d >= -lim && d < lim))  // also false for NaN
                    throw ValueError(fmt::format("to_long: element {} of {} is {}, which is not an int64",
                                                 k, shape_str(x.shape()), d));
                y.data()[k] = static_cast<std::int64_t>(d);
            }
            return LongTensor(std::move(y));
        },
        x.array());
}

BoolTensor to_bool(const Tensor& x) {
    detail::check_defined("to_bool", x);
    return std::visit(
        [](const auto& v) {
            xt::xarray<bool> y = xt::xarray<bool>::from_shape(v.shape());
            std::transform(v.begin(), v.end(), y.begin(), [](auto e) { return e != 0; });  // NaN != 0
            return BoolTensor(std::move(y));
        },
        x.array());
}

BoolTensor to_bool(const LongTensor& x) {
    xt::xarray<bool> y = xt::xarray<bool>::from_shape(x.array().shape());
    std::transform(x.array().begin(), x.array().end(), y.begin(), [](std::int64_t e) { return e != 0; });
    return BoolTensor(std::move(y));
}

namespace {
template <class T>
std::string index_to_string(const IndexTensor<T>& t) {
    std::ostringstream os;
    os << type_name<T>() << "(shape=" << shape_str(t.shape()) << ")\n";
    if (t.numel() == 0) os << "[]";
    else detail::print_values(os, t.array().data(), t.shape(), 0, 0);
    return os.str();
}
}  // namespace

std::string to_string(const LongTensor& t) { return index_to_string(t); }
std::string to_string(const BoolTensor& t) { return index_to_string(t); }
std::ostream& operator<<(std::ostream& os, const LongTensor& t) { return os << to_string(t); }
std::ostream& operator<<(std::ostream& os, const BoolTensor& t) { return os << to_string(t); }

LongTensor arange_long(std::int64_t stop) { return arange_long(0, stop, 1); }

LongTensor arange_long(std::int64_t start, std::int64_t stop, std::int64_t step) {
    if (step == 0) throw ValueError(fmt::format("arange_long({}, {}, {}): the step must not be 0", start, stop, step));
    // Counted in unsigned arithmetic so that no step or range can overflow.
    std::uint64_t count = 0;
    if (step > 0 && stop > start)
        count = (static_cast<std::uint64_t>(stop) - static_cast<std::uint64_t>(start) - 1) / static_cast<std::uint64_t>(step) + 1;
    if (step < 0 && stop < start)
        count = (static_cast<std::uint64_t>(start) - static_cast<std::uint64_t>(stop) - 1) /
                    (0 - static_cast<std::uint64_t>(step)) + 1;
    if (count > (std::uint64_t{1} << 40))
        throw ValueError(fmt::format("arange_long({}, {}, {}): {} elements is too many", start, stop, step, count));
    xt::xarray<std::int64_t> y;
    try {
        y = xt::xarray<std::int64_t>::from_shape({static_cast<std::size_t>(count)});
    } catch (const std::bad_alloc&) {
        throw ValueError(fmt::format("arange_long({}, {}, {}): {} elements do not fit in memory", start, stop, step, count));
    }
    for (std::uint64_t k = 0; k < count; ++k)
        y.data()[k] = static_cast<std::int64_t>(static_cast<std::uint64_t>(start) + k * static_cast<std::uint64_t>(step));
    return LongTensor(std::move(y));
}

// ---- searching and sorting --------------------------------------------------------------------
namespace {

// "a comes before b" for the largest first (NaN largest) or the smallest first (NaN last).
template <class T>
bool before(T a, T b, bool largest) {
    if (largest) return (std::isnan(a) && !std::isnan(b)) || a > b;
    return (!std::isnan(a) && std::isnan(b)) || a < b;
}

// For each line along ax, the positions of its first k elements in the order `before` gives, equal
// elements by position (so the result is the same whatever the sort algorithm does with ties), as
// a LongTensor of x's shape with axis ax of size k.
LongTensor order_lines(const Tensor& x, std::size_t ax, std::size_t k, bool largest) {
    Shape s = x.shape();
    const Lines in(s, ax);
    s[ax] = k;
    xt::xarray<std::int64_t> idx = xt::xarray<std::int64_t>::from_shape(s);
    std::int64_t* pi = idx.data();
    detail::dispatch(x.dtype(), [&]<class T>(T) {
        const T* px = x.value<T>().data();
        std::vector<std::int64_t> line(in.n);
        for (std::size_t o = 0; o < in.outer; ++o)
            for (std::size_t i = 0; i < in.inner; ++i) {
                const T* base = px + o * in.n * in.inner + i;
                auto cmp = [&](std::int64_t a, std::int64_t b) {
                    const T va = base[a * static_cast<std::int64_t>(in.inner)], vb = base[b * static_cast<std::int64_t>(in.inner)];
                    if (before(va, vb, largest)) return true;
                    return !before(vb, va, largest) && a < b;
                };
                std::iota(line.begin(), line.end(), 0);
                if (k == 1) line[0] = *std::min_element(line.begin(), line.end(), cmp);
                else if (k < in.n) std::partial_sort(line.begin(), line.begin() + static_cast<long>(k), line.end(), cmp);
                else std::sort(line.begin(), line.end(), cmp);
                for (std::size_t j = 0; j < k; ++j) pi[(o * k + j) * in.inner + i] = line[j];
            }
    });
    return LongTensor(std::move(idx));
}

LongTensor arg_extreme(const char* op, const Tensor& x, long axis, bool keepdim, bool largest) {
    detail::check_defined(op, x);
    const Shape s = x.shape();
    const std::size_t ax = detail::norm_axis(op, axis, s);
    if (s[ax] == 0)
        throw ValueError(fmt::format("{}: x {} has nothing along axis {} to choose from", op, shape_str(s), axis));
    LongTensor idx = order_lines(x, ax, 1, largest);
    if (keepdim) return idx;
    std::vector<long> out(s.begin(), s.end());
    out.erase(out.begin() + static_cast<long>(ax));
    return idx.reshape(out);
}

LongTensor arg_extreme_all(const char* op, const Tensor& x, bool largest) {
    detail::check_defined(op, x);
    if (x.numel() == 0) throw ValueError(fmt::format("{}: x {} is empty: there is nothing to choose from", op,
                                                     shape_str(x.shape())));
    return order_lines(reshape(x.detach(), {-1}), 0, 1, largest).reshape({});
}

}  // namespace

LongTensor argmax(const Tensor& x, long axis, bool keepdim) { return arg_extreme("argmax", x, axis, keepdim, true); }
LongTensor argmin(const Tensor& x, long axis, bool keepdim) { return arg_extreme("argmin", x, axis, keepdim, false); }
LongTensor argmax(const Tensor& x) { return arg_extreme_all("argmax", x, true); }
LongTensor argmin(const Tensor& x) { return arg_extreme_all("argmin", x, false); }

ValuesIndices topk(const Tensor& x, std::size_t k, long axis, bool largest) {
    detail::check_defined("topk", x);
    const Shape s = x.shape();
    const std::size_t ax = detail::norm_axis("topk", axis, s);
    if (k > s[ax])
        throw ValueError(fmt::format("topk: k = {} is larger than axis {} of x {} (size {})", k, axis, shape_str(s),
                                     s[ax]));
    LongTensor idx = order_lines(x, ax, k, largest);
    Tensor values = gather(x, static_cast<long>(ax), idx);
    return {std::move(values), std::move(idx)};
}

ValuesIndices sort(const Tensor& x, long axis, bool descending) {
    detail::check_defined("sort", x);
    const Shape s = x.shape();
    const std::size_t ax = detail::norm_axis("sort", axis, s);
    LongTensor idx = order_lines(x, ax, s[ax], descending);
    Tensor values = gather(x, static_cast<long>(ax), idx);
    return {std::move(values), std::move(idx)};
}

LongTensor argsort(const Tensor& x, long axis, bool descending) {
    detail::check_defined("argsort", x);
    const Shape s = x.shape();
    const std::size_t ax = detail::norm_axis("argsort", axis, s);
    return order_lines(x, ax, s[ax], descending);
}

// ---- comparisons ------------------------------------------------------------------------------
namespace {

// out[o] = f(a[i], b[j]) over the broadcast shape of two arrays of any element types.
template <class A, class B, class F>
BoolTensor compare(const char* op, const xt::xarray<A>& a, const xt::xarray<B>& b, F f) {
    const Shape sa = detail::to_shape(a.shape()), sb = detail::to_shape(b.shape());
    const Shape out = detail::broadcast_shapes(op, sa, sb);
    xt::xarray<bool> y = xt::xarray<bool>::from_shape(out);
    bool* py = y.data();
    const A* pa = a.data();
    const B* pb = b.data();
    detail::broadcast_index<2>(out, {sa, sb}, [&](std::size_t o, const auto& i) { py[o] = f(pa[i[0]], pb[i[1]]); });
    return BoolTensor(std::move(y));
}

template <class F>
BoolTensor compare_tensors(const char* op, const Tensor& a, const Tensor& b, F f) {
    detail::check_defined(op, a, "a");
    detail::check_defined(op, b, "b");
    return std::visit([&](const auto& va, const auto& vb) { return compare(op, va, vb, f); }, a.array(), b.array());
}

template <class F>
BoolTensor compare_scalar(const char* op, const Tensor& a, double b, F f) {
    detail::check_defined(op, a, "a");
    return std::visit(
        [&](const auto& va) {
            using T = typename std::decay_t<decltype(va)>::value_type;
            xt::xarray<bool> y = xt::xarray<bool>::from_shape(va.shape());
            std::transform(va.begin(), va.end(), y.begin(), [&](T v) { return f(static_cast<double>(v), b); });
            return BoolTensor(std::move(y));
        },
        a.array());
}

}  // namespace

#define TAPEGRAD_COMPARISON(name, expr)                                                                     \
    BoolTensor name(const Tensor& a, const Tensor& b) {                                                    \
        return compare_tensors(#name, a, b, [](auto x, auto y) { return expr; });                          \
    }                                                                                                      \
    BoolTensor name(const Tensor& a, double b) {                                                           \
        return compare_scalar(#name, a, b, [](double x, double y) { return expr; });                       \
    }                                                                                                      \
    BoolTensor name(const LongTensor& a, const LongTensor& b) {                                            \
        return compare(#name, a.array(), b.array(), [](std::int64_t x, std::int64_t y) { return expr; }); \
    }                                                                                                      \
    BoolTensor name(const LongTensor& a, std::int64_t b) {                                                 \
        return compare(#name, a.array(), LongTensor::full({}, b).array(),                                 \
                       [](std::int64_t x, std::int64_t y) { return expr; });                               \
    }
TAPEGRAD_COMPARISON(eq, x == y)
TAPEGRAD_COMPARISON(ne, x != y)
TAPEGRAD_COMPARISON(lt, x < y)
TAPEGRAD_COMPARISON(le, x <= y)
TAPEGRAD_COMPARISON(gt, x > y)
TAPEGRAD_COMPARISON(ge, x >= y)
#undef TAPEGRAD_COMPARISON

namespace {
template <class F>
BoolTensor classify(const char* op, const Tensor& x, F f) {
    detail::check_defined(op, x);
    return std::visit(
        [&](const auto& v) {
            xt::xarray<bool> y = xt::xarray<bool>::from_shape(v.shape());
            std::transform(v.begin(), v.end(), y.begin(), f);
            return BoolTensor(std::move(y));
        },
        x.array());
}
}  // namespace

BoolTensor isnan(const Tensor& x) { return classify("isnan", x, [](auto v) { return std::isnan(v); }); }
BoolTensor isinf(const Tensor& x) { return classify("isinf", x, [](auto v) { return std::isinf(v); }); }
BoolTensor isfinite(const Tensor& x) { return classify("isfinite", x, [](auto v) { return std::isfinite(v); }); }

BoolTensor logical_and(const BoolTensor& a, const BoolTensor& b) {
    return compare("logical_and", a.array(), b.array(), [](bool x, bool y) { return x && y; });
}
BoolTensor logical_or(const BoolTensor& a, const BoolTensor& b) {
    return compare("logical_or", a.array(), b.array(), [](bool x, bool y) { return x || y; });
}
BoolTensor logical_xor(const BoolTensor& a, const BoolTensor& b) {
    return compare("logical_xor", a.array(), b.array(), [](bool x, bool y) { return x != y; });
}
BoolTensor logical_not(const BoolTensor& a) {
    xt::xarray<bool> y = xt::xarray<bool>::from_shape(a.array().shape());
    std::transform(a.array().begin(), a.array().end(), y.begin(), [](bool v) { return !v; });
    return BoolTensor(std::move(y));
}
bool any(const BoolTensor& m) { return std::any_of(m.array().begin(), m.array().end(), [](bool v) { return v; }); }
bool all(const BoolTensor& m) { return std::all_of(m.array().begin(), m.array().end(), [](bool v) { return v; }); }
std::size_t count(const BoolTensor& m) {
    return static_cast<std::size_t>(std::count(m.array().begin(), m.array().end(), true));
}

// ---- masks in float ops -----------------------------------------------------------------------
// The mask goes to the where op as 1/0 in the other operand's dtype (where keeps it as a constant).
Tensor masked_fill(const Tensor& x, const BoolTensor& mask, double value) {
    detail::check_defined("masked_fill", x);
    const Shape s = x.shape(), m = mask.shape();
    if (detail::broadcast_shapes("masked_fill", s, m) != s)
        throw ShapeError(fmt::format("masked_fill: mask {} does not broadcast to x {} (x does not grow to the mask)",
                                     shape_str(m), shape_str(s)));
    return where(mask.to(x.dtype()), value, x);
}

Tensor where(const BoolTensor& mask, const Tensor& a, const Tensor& b) {
    detail::check_defined("where", a, "a");
    return where(mask.to(a.dtype()), a, b);
}
Tensor where(const BoolTensor& mask, const Tensor& a, double b) {
    detail::check_defined("where", a, "a");
    return where(mask.to(a.dtype()), a, b);
}
Tensor where(const BoolTensor& mask, double a, const Tensor& b) {
    detail::check_defined("where", b, "b");
    return where(mask.to(b.dtype()), a, b);
}

std::vector<std::int64_t> detail::index_list(const char* op, const LongTensor& index) {
    if (index.dim() != 1)
        throw ShapeError(fmt::format("{}: the index must be 1-D, got a LongTensor of shape {}", op,
                                     shape_str(index.shape())));
    return index.to_vector();
}

}  // namespace tapegrad
