// tapegrad: shape ops. Their backward moves the output gradient back to where each input element
// came from. Most of them pick whole rows along one axis (slice, flip, pad, split, index_select,
// embedding, select), so they share one row-copy kernel whose backward adds into one gradient
// buffer: picking every time step of a [T, B, F] sequence costs O(T B F) in backward, not O(T^2 B F).
// Plain loops over contiguous rows rather than xtensor strided views: assigning into an
// xt::strided_view built from a runtime slice vector writes nothing or crashes under C++20 and g++ 12.
#include <algorithm>
#include <numeric>

#include <xtensor/xbroadcast.hpp>
#include <xtensor/xmanipulation.hpp>

#include "detail/op.hpp"
#include "shape.hpp"

namespace tapegrad {

using detail::BackwardCtx;
using detail::dispatch;
using detail::result;

namespace {

// "[2, 1]": the multi-index of a flat (row-major) position in an array of this shape.
std::string position_str(std::size_t flat, const Shape& shape) {
    Shape pos(shape.size());
    for (std::size_t d = shape.size(); d-- > 0;) {
        pos[d] = flat % shape[d];
        flat /= shape[d];
    }
    return shape_str(pos);
}

std::string valid_range(std::size_t n) {
    return n == 0 ? std::string("the axis is empty") : fmt::format("valid: 0 to {}", n - 1);
}

// ---- the row kernel ---------------------------------------------------------------------------
// x seen as [outer, n, inner] around one axis. Output row k along that axis is x's row src[k], or
// the fill value where src[k] < 0 (padding). The output has outer * src.size() * inner elements in
// that order, whatever shape the caller gives it (select drops the axis, embedding spreads ids').
struct AxisRows {
    std::size_t outer = 1, n = 0, inner = 1;
    std::vector<std::int64_t> src;
    // src is first, first + 1, ... (select, slice with step 1, split, chunk): each outer block is then
    // one contiguous run of src.size() * inner elements, copied or added in one go. -1 otherwise.
    std::int64_t first = -1;
};

AxisRows axis_rows(const Shape& s, std::size_t axis, std::vector<std::int64_t> src) {
    AxisRows r;
    for (std::size_t i = 0; i < axis; ++i) r.outer *= s[i];
    for (std::size_t i = axis + 1; i < s.size(); ++i) r.inner *= s[i];
    r.n = s[axis];
    r.src = std::move(src);
    bool run = !r.src.empty() && r.src[0] >= 0;
    for (std::size_t k = 1; run && k < r.src.size(); ++k) run = r.src[k] == r.src[0] + static_cast<std::int64_t>(k);
    if (run) r.first = r.src[0];
    return r;
}

template <class T>
xt::xarray<T> take_rows(const char* op, const xt::xarray<T>& x, const AxisRows& r, const Shape& out, T fill) {
    xt::xarray<T> y = detail::new_array<T>(op, out);
    const std::size_t m = r.src.size(), in = r.inner;
    const T* px = x.data();
    T* py = y.data();
    if (r.first >= 0) {  // one contiguous run per outer block (a chunk of the last axis: m elements, not m copies of 1)
        const std::size_t f = static_cast<std::size_t>(r.first);
        for (std::size_t o = 0; o < r.outer; ++o) std::copy_n(px + (o * r.n + f) * in, m * in, py + o * m * in);
        return y;
    }
    for (std::size_t o = 0; o < r.outer; ++o)
        for (std::size_t k = 0; k < m; ++k) {
            T* dst = py + (o * m + k) * in;
            if (r.src[k] < 0)
                std::fill(dst, dst + in, fill);
            else
                std::copy_n(px + (o * r.n + static_cast<std::size_t>(r.src[k])) * in, in, dst);
        }
    return y;
}

// gx[o, src[k], :] += g[o, k, :]; repeated source rows accumulate.
template <class T>
void add_rows(const xt::xarray<T>& g, xt::xarray<T>& gx, const AxisRows& r) {
    const std::size_t m = r.src.size(), in = r.inner;
    const T* pg = g.data();
    T* px = gx.data();
    if (r.first >= 0) {
        const std::size_t f = static_cast<std::size_t>(r.first), len = m * in;
        for (std::size_t o = 0; o < r.outer; ++o) {
            const T* from = pg + o * len;
            T* to = px + (o * r.n + f) * in;
            for (std::size_t i = 0; i < len; ++i) to[i] += from[i];
        }
        return;
    }
    for (std::size_t o = 0; o < r.outer; ++o)
        for (std::size_t k = 0; k < m; ++k) {
            if (r.src[k] < 0) continue;
            const T* from = pg + (o * m + k) * in;
            T* to = px + (o * r.n + static_cast<std::size_t>(r.src[k])) * in;
            for (std::size_t i = 0; i < in; ++i) to[i] += from[i];
        }
}

// The op whose output row k along `axis` is x's row src[k] (or `fill` where src[k] < 0).
Tensor rows_op(const char* op, const Tensor& x, std::size_t axis, std::vector<std::int64_t> src, const Shape& out,
               double fill = 0) {
    AxisRows r = axis_rows(x.shape(), axis, std::move(src));
    return dispatch(x.dtype(), [&]<class T>(T) {
        xt::xarray<T> y = take_rows<T>(op, x.value<T>(), r, out, static_cast<T>(fill));
        return result(op, std::move(y), {&x}, [r = std::move(r)](BackwardCtx& c) {
            if (c.needs(0)) add_rows<T>(c.grad_out<T>(), c.grad_buffer<T>(0), r);
        });
    });
}

// The same elements in a new shape (reshape, squeeze, unsqueeze).
Tensor reshape_to(const char* op, const Tensor& x, const Shape& out) {
    return dispatch(x.dtype(), [&]<class T>(T) {
        xt::xarray<T> y = x.value<T>();
        y.reshape(out);
        return result(op, std::move(y), {&x}, [](BackwardCtx& c) {
            xt::xarray<T> g = c.grad_out<T>();
            g.reshape(c.in<T>(0).shape());
            c.accumulate<T>(0, std::move(g));
        });
    });
}

// Output axis i is input axis perm[i]; backward applies the inverse permutation.
Tensor permute_to(const char* op, const Tensor& x, const std::vector<std::size_t>& perm) {
    std::vector<std::size_t> inv(perm.size());
    for (std::size_t i = 0; i < perm.size(); ++i) inv[perm[i]] = i;
    return dispatch(x.dtype(), [&]<class T>(T) {
        xt::xarray<T> y = xt::transpose(x.value<T>(), perm);
        return result(op, std::move(y), {&x}, [inv](BackwardCtx& c) {
            c.accumulate<T>(0, xt::transpose(c.grad_out<T>(), inv));
        });
    });
}

Tensor broadcast_impl(const char* op, const Tensor& x, const Shape& target) {
    detail::check_defined(op, x);
    detail::check_shape_size(op, target);
    const Shape s = x.shape();
    const std::size_t lead = target.size() >= s.size() ? target.size() - s.size() : 0;
    if (target.size() < s.size())
        throw ShapeError(fmt::format("{}: cannot broadcast {} to {}: the target has fewer axes", op, shape_str(s),
                                     shape_str(target)));
    for (std::size_t i = 0; i < s.size(); ++i)
        if (s[i] != target[lead + i] && s[i] != 1)
            throw ShapeError(fmt::format("{}: cannot broadcast {} to {}: axis {} has size {} but the target has {} "
                                         "(only size-1 axes can grow)",
                                         op, shape_str(s), shape_str(target), i, s[i], target[lead + i]));
    return dispatch(x.dtype(), [&]<class T>(T) {
        xt::xarray<T> y = detail::new_array<T>(op, target);
        y = xt::broadcast(x.value<T>(), target);
        return result(op, std::move(y), {&x},
                      [](BackwardCtx& c) { c.accumulate_sum_to<T>(0, c.grad_out<T>()); });
    });
}

std::vector<Tensor> split_impl(const char* op, const Tensor& x, std::size_t ax, const std::vector<std::size_t>& sizes) {
    std::vector<Tensor> out;
    out.reserve(sizes.size());
    Shape s = x.shape();
    std::int64_t off = 0;
    for (std::size_t len : sizes) {
        std::vector<std::int64_t> src(len);
        std::iota(src.begin(), src.end(), off);
        off += static_cast<std::int64_t>(len);
        s[ax] = len;
        out.push_back(rows_op(op, x, ax, std::move(src), s));
    }
    return out;
}

}  // namespace

// ---- views of the same elements -----------------------------------------------------------------
Shape detail::resolve_reshape(const char* op, const Shape& from, const std::vector<long>& shape) {
    std::size_t n = 1;
    for (std::size_t d : from) n *= d;
    Shape out(shape.size());
    long infer = -1;
    std::size_t known = 1;
    for (std::size_t i = 0; i < shape.size(); ++i) {
        if (shape[i] == -1) {
            if (infer >= 0)
                throw ShapeError(fmt::format("{}: {} -> [{}]: only one axis may be -1 (at most one -1 is inferred)", op,
                                             shape_str(from), fmt::join(shape, ", ")));
            infer = static_cast<long>(i);
        } else if (shape[i] < 0) {
            throw ShapeError(fmt::format("{}: {} -> [{}]: negative size {}", op, shape_str(from), fmt::join(shape, ", "),
                                         shape[i]));
        } else {
            out[i] = static_cast<std::size_t>(shape[i]);
            known *= out[i];
        }
    }
    detail::check_shape_size(op, out);  // so that known did not wrap around (a -1 axis is still 0)
    if (infer >= 0) {
        if (known == 0 || n % known != 0)
            throw ShapeError(fmt::format("{}: {} ({} elements) -> [{}]: cannot infer the -1 axis", op, shape_str(from),
                                         n, fmt::join(shape, ", ")));
        out[static_cast<std::size_t>(infer)] = n / known;
        known *= out[static_cast<std::size_t>(infer)];
    }
    if (known != n)
        throw ShapeError(fmt::format("{}: {} ({} elements) -> {} ({} elements): element counts differ", op,
                                     shape_str(from), n, shape_str(out), known));
    return out;
}

Tensor reshape(const Tensor& x, const std::vector<long>& shape) {
    detail::check_defined("reshape", x);
    return reshape_to("reshape", x, detail::resolve_reshape("reshape", x.shape(), shape));
}

Tensor squeeze(const Tensor& x) {
    detail::check_defined("squeeze", x);
    Shape out;
    for (std::size_t d : x.shape())
        if (d != 1) out.push_back(d);
    return reshape_to("squeeze", x, out);
}

Tensor squeeze(const Tensor& x, long axis) {
    detail::check_defined("squeeze", x);
    Shape s = x.shape();
    const std::size_t ax = detail::norm_axis("squeeze", axis, s);
    if (s[ax] != 1)
        throw ShapeError(fmt::format("squeeze: axis {} of {} has size {}; only a size-1 axis can be squeezed", axis,
                                     shape_str(s), s[ax]));
    s.erase(s.begin() + static_cast<long>(ax));
    return reshape_to("squeeze", x, s);
}

Tensor unsqueeze(const Tensor& x, long axis) {
    detail::check_defined("unsqueeze", x);
    Shape s = x.shape();
    const std::size_t ax = detail::norm_axis("unsqueeze", axis, s, 1);
    s.insert(s.begin() + static_cast<long>(ax), 1);
    return reshape_to("unsqueeze", x, s);
}

Tensor transpose(const Tensor& x, long axis0, long axis1) {
    detail::check_defined("transpose", x);
    const Shape s = x.shape();
    if (s.size() < 2 && axis0 == -2 && axis1 == -1)
        throw ShapeError(fmt::format("transpose: needs at least 2 axes, got shape {}", shape_str(s)));
    const std::size_t a0 = detail::norm_axis("transpose", axis0, s);
    const std::size_t a1 = detail::norm_axis("transpose", axis1, s);
    std::vector<std::size_t> perm(s.size());
    std::iota(perm.begin(), perm.end(), std::size_t{0});
    std::swap(perm[a0], perm[a1]);
    return permute_to("transpose", x, perm);
}

Tensor permute(const Tensor& x, const std::vector<long>& axes) {
    detail::check_defined("permute", x);
    const Shape s = x.shape();
    if (axes.size() != s.size())
        throw ShapeError(fmt::format("permute: {} with axes [{}]: needs one axis per dimension ({}), got {}",
                                     shape_str(s), fmt::join(axes, ", "), s.size(), axes.size()));
    std::vector<std::size_t> perm(axes.size());
    std::vector<bool> seen(axes.size(), false);
    for (std::size_t i = 0; i < axes.size(); ++i) {
        perm[i] = detail::norm_axis("permute", axes[i], s);
        if (seen[perm[i]])
            throw ShapeError(fmt::format("permute: {} with axes [{}]: axis {} appears twice; the axes must be a "
                                         "permutation of 0 to {}",
                                         shape_str(s), fmt::join(axes, ", "), perm[i], s.size() - 1));
        seen[perm[i]] = true;
    }
    return permute_to("permute", x, perm);
}

Tensor broadcast_to(const Tensor& x, const Shape& shape) { return broadcast_impl("broadcast_to", x, shape); }
Tensor expand(const Tensor& x, const Shape& shape) { return broadcast_impl("expand", x, shape); }

// ---- picking elements ---------------------------------------------------------------------------
Tensor select(const Tensor& x, long axis, long index) {
    detail::check_defined("select", x);
    Shape s = x.shape();
    const std::size_t ax = detail::norm_axis("select", axis, s);
    const long len = static_cast<long>(s[ax]);
    const long i = index < 0 ? index + len : index;
    if (i < 0 || i >= len)
        throw ShapeError(fmt::format("select: index {} is out of range for axis {} of size {} (shape {})", index, ax,
                                     len, shape_str(s)));
    s.erase(s.begin() + static_cast<long>(ax));
    return rows_op("select", x, ax, {i}, s);
}

Tensor slice(const Tensor& x, long axis, long start, long stop, long step) {
    detail::check_defined("slice", x);
    Shape s = x.shape();
    const std::size_t ax = detail::norm_axis("slice", axis, s);
    if (step < 1)
        throw ValueError(fmt::format("slice: {} along axis {} with step {}: the step must be >= 1", shape_str(s),
                                     axis, step));
    const long len = static_cast<long>(s[ax]);
    // Python's rule: a negative bound counts from the end, then both are clamped to [0, len].
    auto clamp = [len](long b) { return std::clamp(b < 0 ? b + len : b, 0L, len); };
    const long b = clamp(start), e = clamp(stop);
    // Counted, not stepped past e, so a huge step cannot overflow.
    std::vector<std::int64_t> src(e > b ? static_cast<std::size_t>(1 + (e - b - 1) / step) : 0);
    for (std::size_t k = 0; k < src.size(); ++k) src[k] = b + static_cast<long>(k) * step;
    s[ax] = src.size();
    return rows_op("slice", x, ax, std::move(src), s);
}

Tensor index_select(const Tensor& x, long axis, const std::vector<std::int64_t>& index) {
    detail::check_defined("index_select", x);
    Shape s = x.shape();
    const std::size_t ax = detail::norm_axis("index_select", axis, s);
    for (std::size_t k = 0; k < index.size(); ++k)
        if (index[k] < 0 || static_cast<std::size_t>(index[k]) >= s[ax])
            throw ValueError(fmt::format("index_select: index {} at position {} is out of range for axis {} of {} "
                                         "({})",
                                         index[k], k, ax, shape_str(s), valid_range(s[ax])));
    s[ax] = index.size();
    return rows_op("index_select", x, ax, index, s);
}

Tensor embedding(const Tensor& table, const xt::xarray<std::int64_t>& ids) {
    detail::check_defined("embedding", table, "table");
    const Shape ts = table.shape();
    const Shape is = detail::to_shape(ids.shape());
    if (ts.size() != 2)
        throw ShapeError(fmt::format("embedding: the table must be [V, E], got shape {} (ids {})", shape_str(ts),
                                     shape_str(is)));
    const std::int64_t* p = ids.data();
    for (std::size_t k = 0; k < ids.size(); ++k)
        if (p[k] < 0 || static_cast<std::size_t>(p[k]) >= ts[0])
            throw ValueError(fmt::format("embedding: id {} at position {} of ids {} is out of range for a table {} "
                                         "({})",
                                         p[k], position_str(k, is), shape_str(is), shape_str(ts), valid_range(ts[0])));
    Shape out = is;
    out.push_back(ts[1]);
    return rows_op("embedding", table, 0, std::vector<std::int64_t>(p, p + ids.size()), out);
}

Tensor gather(const Tensor& x, long axis, const xt::xarray<std::int64_t>& index) {
    detail::check_defined("gather", x);
    const Shape s = x.shape();
    const Shape is = detail::to_shape(index.shape());
    const std::size_t ax = detail::norm_axis("gather", axis, s);
    if (is.size() != s.size())
        throw ShapeError(fmt::format("gather: x {} and index {}: the index needs x's rank {}, got {}", shape_str(s),
                                     shape_str(is), s.size(), is.size()));
    for (std::size_t d = 0; d < s.size(); ++d)
        if (d != ax && is[d] > s[d])
            throw ShapeError(fmt::format("gather: x {} and index {} along axis {}: index axis {} has size {} > {}; "
                                         "only the gather axis may be larger than x's",
                                         shape_str(s), shape_str(is), ax, d, is[d], s[d]));
    // Flat offset into x of each output element; the index walks its own shape as an odometer.
    Shape stride(s.size(), 1);
    for (std::size_t d = s.size(); d-- > 1;) stride[d - 1] = stride[d] * s[d];
    std::vector<std::size_t> off(index.size());
    Shape pos(is.size(), 0);
    const std::int64_t* p = index.data();
    for (std::size_t k = 0; k < index.size(); ++k) {
        if (p[k] < 0 || static_cast<std::size_t>(p[k]) >= s[ax])
            throw ValueError(fmt::format("gather: index {} at position {} of index {} is out of range for axis {} of "
                                         "x {} ({})",
                                         p[k], shape_str(pos), shape_str(is), ax, shape_str(s), valid_range(s[ax])));
        std::size_t o = 0;
        for (std::size_t d = 0; d < s.size(); ++d) o += (d == ax ? static_cast<std::size_t>(p[k]) : pos[d]) * stride[d];
        off[k] = o;
        for (std::size_t d = pos.size(); d-- > 0;) {
            if (++pos[d] < is[d]) break;
            pos[d] = 0;
        }
    }
    return dispatch(x.dtype(), [&]<class T>(T) {
        xt::xarray<T> y = xt::xarray<T>::from_shape(is);
        const T* px = x.value<T>().data();
        for (std::size_t k = 0; k < off.size(); ++k) y.data()[k] = px[off[k]];
        return result("gather", std::move(y), {&x}, [off = std::move(off)](BackwardCtx& c) {
            if (!c.needs(0)) return;
            T* gx = c.grad_buffer<T>(0).data();
            const T* g = c.grad_out<T>().data();
            for (std::size_t k = 0; k < off.size(); ++k) gx[off[k]] += g[k];
        });
    });
}

Tensor flip(const Tensor& x, long axis) {
    detail::check_defined("flip", x);
    const Shape s = x.shape();
    const std::size_t ax = detail::norm_axis("flip", axis, s);
    std::vector<std::int64_t> src(s[ax]);
    for (std::size_t k = 0; k < s[ax]; ++k) src[k] = static_cast<std::int64_t>(s[ax] - 1 - k);
    return rows_op("flip", x, ax, std::move(src), s);
}

// ---- joining and splitting ----------------------------------------------------------------------
namespace {
void check_list(const char* op, const std::vector<Tensor>& xs) {
    if (xs.empty()) throw ValueError(fmt::format("{}: needs at least one tensor, got an empty list", op));
    for (std::size_t i = 0; i < xs.size(); ++i) {
        detail::check_defined(op, xs[i], "a list element");
        if (xs[i].dtype() != xs[0].dtype())
            throw DTypeError(fmt::format("{}: tensor {} ({}) is {} but tensor 0 ({}) is {}", op, i,
                                         shape_str(xs[i].shape()), dtype_name(xs[i].dtype()),
                                         shape_str(xs[0].shape()), dtype_name(xs[0].dtype())));
    }
}

// Input i, seen as [outer, lens[i], inner], becomes rows [off_i, off_i + lens[i]) of the output
// [outer, sum of lens, inner]; outer is the product of out's axes before `axis`. Backward adds each
// input's block of rows back into its gradient buffer.
Tensor join_rows(const char* op, const std::vector<Tensor>& xs, const Shape& out, std::size_t axis,
                 const std::vector<std::size_t>& lens) {
    std::size_t outer = 1, inner = 1, m = 0;
    for (std::size_t d = 0; d < axis; ++d) outer *= out[d];
    for (std::size_t d = axis + 1; d < out.size(); ++d) inner *= out[d];
    std::vector<std::size_t> offs;
    for (std::size_t len : lens) {
        offs.push_back(m);
        m += len;
    }
    return dispatch(xs[0].dtype(), [&]<class T>(T) {
        xt::xarray<T> y = detail::new_array<T>(op, out);
        for (std::size_t i = 0; i < xs.size(); ++i) {
            const T* px = xs[i].value<T>().data();
            const std::size_t block = lens[i] * inner;
            for (std::size_t o = 0; o < outer; ++o)
                std::copy_n(px + o * block, block, y.data() + (o * m + offs[i]) * inner);
        }
        return result(op, std::move(y), xs, [outer, inner, m, lens, offs](BackwardCtx& c) {
            const T* g = c.grad_out<T>().data();
            for (std::size_t i = 0; i < c.num_inputs(); ++i) {
                if (!c.needs(i)) continue;
                T* gx = c.grad_buffer<T>(i).data();
                const std::size_t block = lens[i] * inner;
                for (std::size_t o = 0; o < outer; ++o) {
                    const T* from = g + (o * m + offs[i]) * inner;
                    T* to = gx + o * block;
                    for (std::size_t e = 0; e < block; ++e) to[e] += from[e];
                }
            }
        });
    });
}
}  // namespace

Tensor stack(const std::vector<Tensor>& xs, long axis) {
    check_list("stack", xs);
    const Shape s0 = xs[0].shape();
    for (std::size_t i = 1; i < xs.size(); ++i)
        if (xs[i].shape() != s0)
            throw ShapeError(fmt::format("stack: tensor {} has shape {} but tensor 0 has shape {}", i,
                                         shape_str(xs[i].shape()), shape_str(s0)));
    const std::size_t ax = detail::norm_axis("stack", axis, s0, 1);
    Shape out = s0;
    out.insert(out.begin() + static_cast<long>(ax), xs.size());
    // Each input is [outer, 1, inner] around the new axis.
    return join_rows("stack", xs, out, ax, std::vector<std::size_t>(xs.size(), 1));
}

Tensor concat(const std::vector<Tensor>& xs, long axis) {
    check_list("concat", xs);
    const Shape s0 = xs[0].shape();
    if (s0.empty()) throw ShapeError("concat: tensor 0 has shape []: 0-d tensors cannot be concatenated (use stack)");
    const std::size_t ax = detail::norm_axis("concat", axis, s0);
    Shape out = s0;
    out[ax] = 0;
    std::vector<std::size_t> lens;
    for (std::size_t i = 0; i < xs.size(); ++i) {
        Shape si = xs[i].shape();
        Shape a = si, b = s0;
        if (si.size() == s0.size()) a[ax] = b[ax] = 0;
        if (a != b)
            throw ShapeError(fmt::format("concat: along axis {}, tensor {} has shape {} but tensor 0 has shape {}; all "
                                         "axes but {} must agree",
                                         ax, i, shape_str(si), shape_str(s0), ax));
        // Sizes of empty tensors can be anything up to 2^63 and wrap when added up.
        out[ax] = detail::checked_add("concat", out[ax], si[ax], "the concatenated size of the axis");
        lens.push_back(si[ax]);
    }
    return join_rows("concat", xs, out, ax, lens);
}

std::vector<Tensor> split(const Tensor& x, const std::vector<std::size_t>& sizes, long axis) {
    detail::check_defined("split", x);
    const Shape s = x.shape();
    const std::size_t ax = detail::norm_axis("split", axis, s);
    // Added up checked: sizes that wrap modulo 2^64 to the axis' size would read out of bounds.
    std::size_t total = 0;
    for (std::size_t len : sizes) total = detail::checked_add("split", total, len, "the sum of the sizes");
    if (total != s[ax])
        throw ShapeError(fmt::format("split: sizes [{}] sum to {} but axis {} of {} has size {}",
                                     fmt::join(sizes, ", "), total, ax, shape_str(s), s[ax]));
    return split_impl("split", x, ax, sizes);
}

std::vector<Tensor> chunk(const Tensor& x, std::size_t n, long axis) {
    detail::check_defined("chunk", x);
    const Shape s = x.shape();
    const std::size_t ax = detail::norm_axis("chunk", axis, s);
    if (n == 0)
        throw ValueError(fmt::format("chunk: {} into 0 chunks along axis {}: n must be >= 1", shape_str(s), axis));
    const std::size_t len = s[ax], c = len / n + (len % n != 0);  // ceil(len / n) without overflow
    std::vector<std::size_t> sizes;
    for (std::size_t left = len; left > 0; left -= std::min(c, left)) sizes.push_back(std::min(c, left));
    if (sizes.empty()) sizes.push_back(0);
    return split_impl("chunk", x, ax, sizes);
}

Tensor pad(const Tensor& x, long axis, std::size_t before, std::size_t after, double value) {
    detail::check_defined("pad", x);
    Shape s = x.shape();
    const std::size_t ax = detail::norm_axis("pad", axis, s);
    // Checked before the row list is made: a wrapped size would make it shorter than `before`.
    s[ax] = detail::checked_add("pad", detail::checked_add("pad", before, s[ax], "the padded size of the axis"), after,
                                "the padded size of the axis");
    detail::check_shape_size("pad", s);
    detail::check_shape_bytes("pad", s, x.dtype() == f64 ? sizeof(double) : sizeof(float));
    std::vector<std::int64_t> src;  // one entry per output row: even an empty x's can be too many
    try {
        src.assign(s[ax], -1);
    } catch (const std::exception&) {  // std::bad_alloc or std::length_error
        detail::throw_alloc_failed("pad", s, x.dtype() == f64 ? sizeof(double) : sizeof(float));
    }
    std::iota(src.begin() + static_cast<long>(before), src.end() - static_cast<long>(after), std::int64_t{0});
    return rows_op("pad", x, ax, std::move(src), s, value);
}

}  // namespace tapegrad
