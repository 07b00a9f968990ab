// tapegrad: shape ops. Their backward moves the output gradient back to where each input element
// came from; select adds into a slice of one gradient buffer so that picking every time step of a
// [T, B, F] sequence costs O(T B F) in backward, not O(T^2 B F).
#include <numeric>

#include <xtensor/xmanipulation.hpp>
#include <xtensor/xstrided_view.hpp>

#include "detail/op.hpp"
#include "shape.hpp"

namespace tapegrad {

using detail::BackwardCtx;
using detail::dispatch;
using detail::result;
using detail::slice_on;

Tensor reshape(const Tensor& x, const std::vector<long>& shape) {
    detail::check_defined("reshape", x);
    const std::size_t n = x.numel();
    Shape out(shape.size());
    long infer = -1;
    std::size_t known = 1;
    for (std::size_t i = 0; i < shape.size(); ++i) {
        if (shape[i] == -1) {
            if (infer >= 0)
                throw ShapeError(fmt::format("reshape: {} -> [{}]: only one axis may be -1", shape_str(x.shape()),
                                             fmt::join(shape, ", ")));
            infer = static_cast<long>(i);
        } else if (shape[i] < 0) {
            throw ShapeError(fmt::format("reshape: {} -> [{}]: negative size {}", shape_str(x.shape()),
                                         fmt::join(shape, ", "), shape[i]));
        } else {
            out[i] = static_cast<std::size_t>(shape[i]);
            known *= out[i];
        }
    }
    if (infer >= 0) {
        if (known == 0 || n % known != 0)
            throw ShapeError(fmt::format("reshape: {} ({} elements) -> [{}]: cannot infer the -1 axis",
                                         shape_str(x.shape()), n, fmt::join(shape, ", ")));
        out[static_cast<std::size_t>(infer)] = n / known;
        known *= out[static_cast<std::size_t>(infer)];
    }
    if (known != n)
        throw ShapeError(fmt::format("reshape: {} ({} elements) -> {} ({} elements): element counts differ",
                                     shape_str(x.shape()), n, shape_str(out), known));
    return dispatch(x.dtype(), [&]<class T>(T) {
        xt::xarray<T> y = x.value<T>();
        y.reshape(out);
        return result("reshape", std::move(y), {&x}, [](BackwardCtx& c) {
            xt::xarray<T> g = c.grad_out<T>();
            g.reshape(c.in<T>(0).shape());
            c.accumulate<T>(0, std::move(g));
        });
    });
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
    std::swap(perm[a0], perm[a1]);  // a swap is its own inverse, so backward uses the same permutation
    return dispatch(x.dtype(), [&]<class T>(T) {
        xt::xarray<T> y = xt::transpose(x.value<T>(), perm);
        return result("transpose", std::move(y), {&x}, [perm](BackwardCtx& c) {
            c.accumulate<T>(0, xt::transpose(c.grad_out<T>(), perm));
        });
    });
}

Tensor select(const Tensor& x, long axis, long index) {
    detail::check_defined("select", x);
    const Shape s = x.shape();
    const std::size_t ax = detail::norm_axis("select", axis, s);
    const long len = static_cast<long>(s[ax]);
    const long i = index < 0 ? index + len : index;
    if (i < 0 || i >= len)
        throw ShapeError(fmt::format("select: index {} is out of range for axis {} of size {} (shape {})", index, ax,
                                     len, shape_str(s)));
    const auto sv = slice_on(s.size(), ax, i);
    return dispatch(x.dtype(), [&]<class T>(T) {
        xt::xarray<T> y = xt::strided_view(x.value<T>(), sv);
        return result("select", std::move(y), {&x}, [sv](BackwardCtx& c) {
            if (!c.needs(0)) return;
            auto part = xt::strided_view(c.grad_buffer<T>(0), sv);
            part += c.grad_out<T>();
        });
    });
}

namespace {
void check_list(const char* op, const std::vector<Tensor>& xs) {
    if (xs.empty()) throw ValueError(fmt::format("{}: needs at least one tensor, got an empty list", op));
    for (std::size_t i = 0; i < xs.size(); ++i) {
        detail::check_defined(op, xs[i], "a list element");
        if (xs[i].dtype() != xs[0].dtype())
            throw DTypeError(fmt::format("{}: tensor {} is {} but tensor 0 is {}", op, i, dtype_name(xs[i].dtype()),
                                         dtype_name(xs[0].dtype())));
    }
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
    return dispatch(xs[0].dtype(), [&]<class T>(T) {
        xt::xarray<T> y = xt::xarray<T>::from_shape(out);
        for (std::size_t i = 0; i < xs.size(); ++i) xt::strided_view(y, slice_on(out.size(), ax, i)) = xs[i].value<T>();
        return result("stack", std::move(y), xs, [ax](BackwardCtx& c) {
            const auto& g = c.grad_out<T>();
            for (std::size_t i = 0; i < c.num_inputs(); ++i)
                if (c.needs(i)) c.accumulate<T>(i, xt::strided_view(g, slice_on(g.dimension(), ax, i)));
        });
    });
}

Tensor concat(const std::vector<Tensor>& xs, long axis) {
    check_list("concat", xs);
    const Shape s0 = xs[0].shape();
    if (s0.empty()) throw ShapeError("concat: cannot concatenate 0-d tensors (use stack)");
    const std::size_t ax = detail::norm_axis("concat", axis, s0);
    Shape out = s0;
    out[ax] = 0;
    for (std::size_t i = 0; i < xs.size(); ++i) {
        Shape si = xs[i].shape();
        Shape a = si, b = s0;
        if (si.size() == s0.size()) a[ax] = b[ax] = 0;
        if (a != b)
            throw ShapeError(fmt::format("concat: along axis {}, tensor {} has shape {} but tensor 0 has shape {}; all "
                                         "axes but {} must agree",
                                         ax, i, shape_str(si), shape_str(s0), ax));
        out[ax] += si[ax];
    }
    std::vector<std::size_t> offsets;
    return dispatch(xs[0].dtype(), [&]<class T>(T) {
        xt::xarray<T> y = xt::xarray<T>::from_shape(out);
        std::size_t off = 0;
        for (const Tensor& t : xs) {
            const std::size_t len = t.shape()[ax];
            offsets.push_back(off);
            xt::strided_view(y, slice_on(out.size(), ax, xt::range(off, off + len))) = t.value<T>();
            off += len;
        }
        return result("concat", std::move(y), xs, [ax, offsets](BackwardCtx& c) {
            const auto& g = c.grad_out<T>();
            for (std::size_t i = 0; i < c.num_inputs(); ++i) {
                if (!c.needs(i)) continue;
                const std::size_t len = c.in<T>(i).shape()[ax];
                c.accumulate<T>(i, xt::strided_view(g, slice_on(g.dimension(), ax,
                                                                xt::range(offsets[i], offsets[i] + len))));
            }
        });
    });
}

}  // namespace tapegrad
