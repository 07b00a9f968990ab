// tapegrad: reductions. Each runs on a Plan (the input shape, the kept shape with every reduced axis
// of size 1, the output shape) and walks the input once through detail::broadcast_index, which maps
// each input element to the output element it feeds: forward gathers along that map, backward
// scatters the output gradient back along it. Plain loops: xtensor's reducers are never used.
#include <cmath>
#include <limits>
#include <numeric>

#include <fmt/format.h>

#include "detail/op.hpp"
#include "reduce.hpp"

namespace tapegrad {

using detail::BackwardCtx;
using detail::dispatch;
using detail::result;

namespace {
struct Plan {
    Shape in;                   // x
    Shape kept;                 // x with every reduced axis of size 1
    Shape out;                  // the result: kept, or kept without the reduced axes
    std::size_t count = 1;      // input elements reduced into each output element
    std::size_t numel_out = 1;
    long empty_axis = -1;       // a reduced axis of size 0, if any
};

Plan plan(const char* op, const Tensor& x, const std::vector<long>& axes, bool keepdims) {
    detail::check_defined(op, x);
    Plan p;
    p.in = p.kept = x.shape();
    std::vector<bool> reduced(p.in.size(), false);
    for (long a : axes) {
        const std::size_t ax = detail::norm_axis(op, a, p.in);
        if (reduced[ax])
            throw ShapeError(fmt::format("{}: axes [{}] name axis {} twice (tensor of shape {})", op,
                                         fmt::join(axes, ", "), ax, shape_str(p.in)));
        reduced[ax] = true;
        p.count *= p.in[ax];
        p.kept[ax] = 1;
        if (p.in[ax] == 0) p.empty_axis = static_cast<long>(ax);
    }
    for (std::size_t d = 0; d < p.in.size(); ++d)
        if (keepdims || !reduced[d]) p.out.push_back(p.kept[d]);
    for (std::size_t d : p.out) p.numel_out *= d;
    return p;
}

std::vector<long> all_axes(const char* op, const Tensor& x) {
    detail::check_defined(op, x);
    std::vector<long> axes(x.dim());
    std::iota(axes.begin(), axes.end(), 0L);
    return axes;
}

// f(o, j) for every input element o, j being the output element it feeds; row-major order in o.
template <class F>
void each(const Plan& p, F&& f) {
    detail::broadcast_index<1>(p.in, {p.kept}, [&](std::size_t o, const auto& i) { f(o, i[0]); });
}

Tensor sum_mean(const char* op, const Tensor& x, const std::vector<long>& axes, bool keepdims, bool is_mean) {
    const Plan p = plan(op, x, axes, keepdims);
    // The mean of nothing is NaN, as NumPy's; the sum of nothing 0.
    const double scale = !is_mean ? 1.0 : p.count == 0 ? NAN : 1.0 / static_cast<double>(p.count);
    return dispatch(x.dtype(), [&]<class T>(T) {
        const T* px = x.value<T>().data();
        std::vector<double> acc(p.numel_out, 0.0);
        each(p, [&](std::size_t o, std::size_t j) { acc[j] += px[o]; });
        xt::xarray<T> y = xt::xarray<T>::from_shape(p.out);
        for (std::size_t j = 0; j < acc.size(); ++j) y.data()[j] = static_cast<T>(acc[j] * scale);
        return result(op, std::move(y), {&x}, [p, scale](BackwardCtx& c) {
            const T* pg = c.grad_out<T>().data();
            xt::xarray<T> gx = xt::xarray<T>::from_shape(p.in);
            T* pd = gx.data();
            each(p, [&](std::size_t o, std::size_t j) { pd[o] = pg[j] * static_cast<T>(scale); });
            c.accumulate<T>(0, std::move(gx));
        });
    });
}

// For each output element, x's flat index of its max (min). The walk is row-major and replaces only
// on a strict improvement, so the first of equal elements wins; a NaN beats every number and stays.
template <class T>
std::vector<std::size_t> arg_extreme(const Plan& p, const T* px, bool is_max) {
    constexpr std::size_t none = std::numeric_limits<std::size_t>::max();
    std::vector<std::size_t> arg(p.numel_out, none);
    each(p, [&](std::size_t o, std::size_t j) {
        if (arg[j] != none) {
            const T v = px[o], best = px[arg[j]];
            if (std::isnan(best) || !(std::isnan(v) || (is_max ? v > best : v < best))) return;
        }
        arg[j] = o;
    });
    return arg;
}

Tensor extreme(const char* op, const Tensor& x, const std::vector<long>& axes, bool keepdims, bool is_max) {
    const Plan p = plan(op, x, axes, keepdims);
    if (p.count == 0)
        throw ShapeError(fmt::format("{}: axis {} of the tensor of shape {} is empty; the {} of no elements is "
                                     "undefined",
                                     op, p.empty_axis, shape_str(p.in), op));
    return dispatch(x.dtype(), [&]<class T>(T) {
        const T* px = x.value<T>().data();
        std::vector<std::size_t> arg = arg_extreme(p, px, is_max);
        xt::xarray<T> y = xt::xarray<T>::from_shape(p.out);
        for (std::size_t j = 0; j < arg.size(); ++j) y.data()[j] = px[arg[j]];
        return result(op, std::move(y), {&x}, [arg = std::move(arg)](BackwardCtx& c) {
            if (!c.needs(0)) return;  // the gradient goes to the chosen elements only
            const T* pg = c.grad_out<T>().data();
            T* pd = c.grad_buffer<T>(0).data();
            for (std::size_t j = 0; j < arg.size(); ++j) pd[arg[j]] += pg[j];
        });
    });
}

Tensor lse(const Tensor& x, const std::vector<long>& axes, bool keepdims) {
    const Plan p = plan("logsumexp", x, axes, keepdims);
    return dispatch(x.dtype(), [&]<class T>(T) {
        const T* px = x.value<T>().data();
        std::vector<T> shift(p.numel_out, -INFINITY);  // the max; NaN never wins `>`, it shows in the sum
        each(p, [&](std::size_t o, std::size_t j) {
            if (px[o] > shift[j]) shift[j] = px[o];
        });
        for (T& m : shift)  // an infinite max would give inf - inf = NaN: shift by 0 instead
            if (!std::isfinite(m)) m = T(0);
        std::vector<double> acc(p.numel_out, 0.0);
        each(p, [&](std::size_t o, std::size_t j) { acc[j] += std::exp(px[o] - shift[j]); });
        xt::xarray<T> y = xt::xarray<T>::from_shape(p.out);
        for (std::size_t j = 0; j < acc.size(); ++j) y.data()[j] = static_cast<T>(std::log(acc[j])) + shift[j];
        return result("logsumexp", std::move(y), {&x}, [p](BackwardCtx& c) {
            const T *px = c.in<T>(0).data(), *py = c.out<T>().data(), *pg = c.grad_out<T>().data();
            xt::xarray<T> gx = xt::xarray<T>::from_shape(p.in);
            T* pd = gx.data();
            // softmax(x) = exp(x - y); a row of all -inf has no softmax and passes no gradient.
            each(p, [&](std::size_t o, std::size_t j) {
                pd[o] = py[j] == -INFINITY ? T(0) : pg[j] * std::exp(px[o] - py[j]);
            });
            c.accumulate<T>(0, std::move(gx));
        });
    });
}

Tensor l2(const Tensor& x, const std::vector<long>& axes, bool keepdims) {
    const Plan p = plan("norm", x, axes, keepdims);
    return dispatch(x.dtype(), [&]<class T>(T) {
        const T* px = x.value<T>().data();
        std::vector<double> acc(p.numel_out, 0.0);
        each(p, [&](std::size_t o, std::size_t j) { acc[j] += static_cast<double>(px[o]) * px[o]; });
        xt::xarray<T> y = xt::xarray<T>::from_shape(p.out);
        for (std::size_t j = 0; j < acc.size(); ++j) y.data()[j] = static_cast<T>(std::sqrt(acc[j]));
        return result("norm", std::move(y), {&x}, [p](BackwardCtx& c) {
            const T *px = c.in<T>(0).data(), *py = c.out<T>().data(), *pg = c.grad_out<T>().data();
            xt::xarray<T> gx = xt::xarray<T>::from_shape(p.in);
            T* pd = gx.data();
            each(p, [&](std::size_t o, std::size_t j) { pd[o] = py[j] == T(0) ? T(0) : pg[j] * px[o] / py[j]; });
            c.accumulate<T>(0, std::move(gx));
        });
    });
}
}  // namespace

Tensor sum(const Tensor& x) { return sum_mean("sum", x, all_axes("sum", x), false, false); }
Tensor sum(const Tensor& x, long axis, bool keepdims) { return sum_mean("sum", x, {axis}, keepdims, false); }
Tensor sum(const Tensor& x, const std::vector<long>& axes, bool keepdims) {
    return sum_mean("sum", x, axes, keepdims, false);
}
Tensor sum(const Tensor& x, std::initializer_list<long> axes, bool keepdims) {
    return sum_mean("sum", x, std::vector<long>(axes), keepdims, false);
}
Tensor mean(const Tensor& x) { return sum_mean("mean", x, all_axes("mean", x), false, true); }
Tensor mean(const Tensor& x, long axis, bool keepdims) { return sum_mean("mean", x, {axis}, keepdims, true); }
Tensor mean(const Tensor& x, const std::vector<long>& axes, bool keepdims) {
    return sum_mean("mean", x, axes, keepdims, true);
}
Tensor mean(const Tensor& x, std::initializer_list<long> axes, bool keepdims) {
    return sum_mean("mean", x, std::vector<long>(axes), keepdims, true);
}

Tensor max(const Tensor& x) { return extreme("max", x, all_axes("max", x), false, true); }
Tensor max(const Tensor& x, long axis, bool keepdims) { return extreme("max", x, {axis}, keepdims, true); }
Tensor min(const Tensor& x) { return extreme("min", x, all_axes("min", x), false, false); }
Tensor min(const Tensor& x, long axis, bool keepdims) { return extreme("min", x, {axis}, keepdims, false); }

Tensor logsumexp(const Tensor& x) { return lse(x, all_axes("logsumexp", x), false); }
Tensor logsumexp(const Tensor& x, long axis, bool keepdims) { return lse(x, {axis}, keepdims); }
Tensor norm(const Tensor& x) { return l2(x, all_axes("norm", x), false); }
Tensor norm(const Tensor& x, long axis, bool keepdims) { return l2(x, {axis}, keepdims); }

}  // namespace tapegrad
