// tapegrad: elementwise math with NumPy broadcasting. Each op: checks, forward, and its backward
// closure right below; broadcast inputs get their gradient summed back to their own shape. Unary ops
// share detail::unary_op, binary ones with a local derivative share binary_op below.
#include <array>
#include <cmath>
#include <cstdint>
#include <vector>

#include <xtensor/xmath.hpp>
#include <xtensor/xoperation.hpp>

#include "detail/op.hpp"
#include "elementwise.hpp"

namespace tapegrad {

using detail::BackwardCtx;
using detail::dispatch;
using detail::result;

namespace {
void check_binary(const char* op, const Tensor& a, const Tensor& b) {
    detail::check_defined(op, a, "first input");
    detail::check_defined(op, b, "second input");
    detail::check_same_dtype(op, a, b);
    detail::broadcast_shapes(op, a.shape(), b.shape());
}
// A constant 0-d tensor in x's dtype, for scalar arithmetic.
Tensor scalar_like(const Tensor& x, double v) {
    detail::check_defined("scalar arithmetic", x);
    return Tensor::scalar(v, x.dtype());
}
}  // namespace

Tensor add(const Tensor& a, const Tensor& b) {
    check_binary("add", a, b);
    return dispatch(a.dtype(), [&]<class T>(T) {
        xt::xarray<T> y = a.value<T>() + b.value<T>();
        return result("add", std::move(y), {&a, &b}, [](BackwardCtx& c) {
            c.accumulate_sum_to<T>(0, c.grad_out<T>());
            c.accumulate_sum_to<T>(1, c.grad_out<T>());
        });
    });
}

Tensor sub(const Tensor& a, const Tensor& b) {
    check_binary("sub", a, b);
    return dispatch(a.dtype(), [&]<class T>(T) {
        xt::xarray<T> y = a.value<T>() - b.value<T>();
        return result("sub", std::move(y), {&a, &b}, [](BackwardCtx& c) {
            c.accumulate_sum_to<T>(0, c.grad_out<T>());
            if (c.needs(1)) c.accumulate_sum_to<T>(1, -c.grad_out<T>());
        });
    });
}

Tensor mul(const Tensor& a, const Tensor& b) {
    check_binary("mul", a, b);
    return dispatch(a.dtype(), [&]<class T>(T) {
        xt::xarray<T> y = a.value<T>() * b.value<T>();
        return result("mul", std::move(y), {&a, &b}, [](BackwardCtx& c) {
            const auto& g = c.grad_out<T>();
            if (c.needs(0)) c.accumulate_sum_to<T>(0, g * c.in<T>(1));
            if (c.needs(1)) c.accumulate_sum_to<T>(1, g * c.in<T>(0));
        });
    });
}

Tensor div(const Tensor& a, const Tensor& b) {
    check_binary("div", a, b);
    return dispatch(a.dtype(), [&]<class T>(T) {
        xt::xarray<T> y = a.value<T>() / b.value<T>();
        return result("div", std::move(y), {&a, &b}, [](BackwardCtx& c) {
            const auto& g = c.grad_out<T>();
            const auto& bv = c.in<T>(1);
            if (c.needs(0)) c.accumulate_sum_to<T>(0, g / bv);
            // d(a/b)/db = -a/b^2 = -y/b
            if (c.needs(1)) c.accumulate_sum_to<T>(1, -g * c.out<T>() / bv);
        });
    });
}

Tensor neg(const Tensor& x) {
    detail::check_defined("neg", x);
    return dispatch(x.dtype(), [&]<class T>(T) {
        xt::xarray<T> y = -x.value<T>();
        return result("neg", std::move(y), {&x}, [](BackwardCtx& c) { c.accumulate<T>(0, -c.grad_out<T>()); });
    });
}

// ---- unary math: y = f(x), dx += g * f'(x, y) -------------------------------------------------
Tensor exp(const Tensor& x) {
    return detail::unary_op(
        "exp", x,
        []<class T>(const xt::xarray<T>& v) {
            return detail::exp_family(v, detail::simd::kExpBound, [](const xt::xarray<T>& a) -> xt::xarray<T> { return xt::exp(a); });
        },
        []<class T>(T, T y) { return y; });
}

Tensor log(const Tensor& x) {
    return detail::unary_op("log", x, [](const auto& v) { return xt::log(v); }, []<class T>(T v, T) { return T(1) / v; });
}

Tensor sqrt(const Tensor& x) {
    return detail::unary_op("sqrt", x, [](const auto& v) { return xt::sqrt(v); },
                            []<class T>(T, T y) { return T(0.5) / y; });
}

Tensor abs(const Tensor& x) {
    return detail::unary_op("abs", x, [](const auto& v) { return xt::abs(v); },
                            []<class T>(T v, T) { return T((v > T(0)) - (v < T(0))); });
}

Tensor pow(const Tensor& x, double p) {
    return detail::unary_op(
        "pow", x, [p]<class T>(const xt::xarray<T>& v) { return xt::pow(v, T(p)); },
        [p]<class T>(T v, T) { return p == 0 ? T(0) : T(p) * std::pow(v, T(p) - T(1)); });
}

// ---- binary with broadcasting: y = f(a, b), da += g * fa(a, b, y), db += g * fb(a, b, y) ---------
namespace {
template <class F, class FA, class FB>
Tensor binary_op(const char* op, const Tensor& a, const Tensor& b, F f, FA fa, FB fb) {
    check_binary(op, a, b);
    const Shape out = detail::broadcast_shapes(op, a.shape(), b.shape());
    return dispatch(a.dtype(), [&]<class T>(T) {
        const T* pa = a.value<T>().data();
        const T* pb = b.value<T>().data();
        xt::xarray<T> y = xt::xarray<T>::from_shape(out);
        T* py = y.data();
        detail::broadcast_index<2>(out, {a.shape(), b.shape()},
                                   [&](std::size_t o, const auto& i) { py[o] = f(pa[i[0]], pb[i[1]]); });
        return result(op, std::move(y), {&a, &b}, [out, fa, fb](BackwardCtx& c) {
            const T *pa = c.in<T>(0).data(), *pb = c.in<T>(1).data(), *py = c.out<T>().data();
            const T* pg = c.grad_out<T>().data();
            const std::array<Shape, 2> in{detail::to_shape(c.in<T>(0).shape()), detail::to_shape(c.in<T>(1).shape())};
            auto grad = [&](std::size_t k, auto d) {  // summed straight into the input's shape
                if (!c.needs(k)) return;
                xt::xarray<T> gk = xt::zeros<T>(in[k]);
                T* pk = gk.data();
                detail::broadcast_index<2>(out, in, [&](std::size_t o, const auto& i) {
                    pk[i[k]] += pg[o] * d(pa[i[0]], pb[i[1]], py[o]);
                });
                c.accumulate<T>(k, std::move(gk));
            };
            grad(0, fa);
            grad(1, fb);
        });
    });
}

// maximum/minimum: a's share of the gradient: all of it where a was chosen (or is NaN), half on a tie.
template <class T>
T share_of_a(T a, T b, bool is_max) {
    if (a == b) return T(0.5);
    return (is_max ? a > b : a < b) || std::isnan(a) ? T(1) : T(0);
}
Tensor extreme(const char* op, const Tensor& a, const Tensor& b, bool is_max) {
    return binary_op(
        op, a, b,
        [is_max]<class T>(T u, T v) { return (is_max ? u >= v : u <= v) || std::isnan(u) ? u : v; },
        [is_max]<class T>(T u, T v, T) { return share_of_a(u, v, is_max); },
        [is_max]<class T>(T u, T v, T) { return T(1) - share_of_a(u, v, is_max); });
}
}  // namespace

Tensor pow(const Tensor& x, const Tensor& p) {
    return binary_op(
        "pow", x, p, []<class T>(T u, T v) { return std::pow(u, v); },
        []<class T>(T u, T v, T) { return v == T(0) ? T(0) : v * std::pow(u, v - T(1)); },
        []<class T>(T u, T v, T y) { return u == T(0) && v >= T(0) ? T(0) : y * std::log(u); });
}

Tensor maximum(const Tensor& a, const Tensor& b) { return extreme("maximum", a, b, true); }
Tensor minimum(const Tensor& a, const Tensor& b) { return extreme("minimum", a, b, false); }

Tensor clamp(const Tensor& x, double lo, double hi) {
    detail::check_defined("clamp", x);
    if (!(lo <= hi))
        throw ValueError(fmt::format("clamp: min {} must not exceed max {} (input of shape {})", lo, hi,
                                     shape_str(x.shape())));
    return detail::unary_op(
        "clamp", x,
        detail::elementwise([lo, hi]<class T>(T v) { return v < T(lo) ? T(lo) : v > T(hi) ? T(hi) : v; }),
        [lo, hi]<class T>(T v, T) { return T(v >= T(lo) && v <= T(hi)); });
}
Tensor clamp_min(const Tensor& x, double lo) { return clamp(x, lo, INFINITY); }
Tensor clamp_max(const Tensor& x, double hi) { return clamp(x, -INFINITY, hi); }

namespace {
// where's output shape, or a ShapeError naming all three shapes (not just the pair that clashed).
Shape where_shape(const Shape& ms, const Shape& as, const Shape& bs) {
    try {
        return detail::broadcast_shapes("where", detail::broadcast_shapes("where", ms, as), bs);
    } catch (const ShapeError&) {
        throw ShapeError(fmt::format("where: mask {}, a {} and b {} cannot be broadcast together", shape_str(ms),
                                     shape_str(as), shape_str(bs)));
    }
}
// The mask as bytes (nonzero, NaN included, is true), whatever its dtype.
std::vector<std::uint8_t> truth(const Tensor& mask) {
    std::vector<std::uint8_t> m(mask.numel());
    dispatch(mask.dtype(), [&]<class M>(M) {
        const M* pm = mask.value<M>().data();
        for (std::size_t i = 0; i < m.size(); ++i) m[i] = pm[i] != M(0);
    });
    return m;
}
}  // namespace

Tensor where(const Tensor& mask, const Tensor& a, const Tensor& b) {
    detail::check_defined("where", mask, "mask");
    detail::check_defined("where", a, "a");
    detail::check_defined("where", b, "b");
    detail::check_same_dtype("where", a, b);
    const std::array<Shape, 3> in{mask.shape(), a.shape(), b.shape()};
    const Shape out = where_shape(in[0], in[1], in[2]);
    return dispatch(a.dtype(), [&]<class T>(T) {
        std::vector<std::uint8_t> m = truth(mask);  // kept for backward: the mask gets no gradient
        const T *pa = a.value<T>().data(), *pb = b.value<T>().data();
        xt::xarray<T> y = xt::xarray<T>::from_shape(out);
        T* py = y.data();
        detail::broadcast_index<3>(out, in, [&](std::size_t o, const auto& i) { py[o] = m[i[0]] ? pa[i[1]] : pb[i[2]]; });
        return result("where", std::move(y), {&a, &b}, [m = std::move(m), in, out](BackwardCtx& c) {
            const T* pg = c.grad_out<T>().data();
            for (std::size_t k = 0; k < 2; ++k) {  // input k has shape in[k + 1]; a takes g where m is true
                if (!c.needs(k)) continue;
                xt::xarray<T> gk = xt::zeros<T>(in[k + 1]);
                T* pk = gk.data();
                detail::broadcast_index<3>(out, in, [&](std::size_t o, const auto& i) {
                    if (bool(m[i[0]]) == (k == 0)) pk[i[k + 1]] += pg[o];
                });
                c.accumulate<T>(k, std::move(gk));
            }
        });
    });
}

Tensor where(const Tensor& mask, const Tensor& a, double b) {
    detail::check_defined("where", a, "a");
    return where(mask, a, Tensor::scalar(b, a.dtype()));
}

Tensor where(const Tensor& mask, double a, const Tensor& b) {
    detail::check_defined("where", b, "b");
    return where(mask, Tensor::scalar(a, b.dtype()), b);
}

Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
Tensor operator-(const Tensor& x) { return neg(x); }
Tensor operator+(const Tensor& a, double b) { return add(a, scalar_like(a, b)); }
Tensor operator+(double a, const Tensor& b) { return add(scalar_like(b, a), b); }
Tensor operator-(const Tensor& a, double b) { return sub(a, scalar_like(a, b)); }
Tensor operator-(double a, const Tensor& b) { return sub(scalar_like(b, a), b); }
Tensor operator*(const Tensor& a, double b) { return mul(a, scalar_like(a, b)); }
Tensor operator*(double a, const Tensor& b) { return mul(scalar_like(b, a), b); }
Tensor operator/(const Tensor& a, double b) { return div(a, scalar_like(a, b)); }
Tensor operator/(double a, const Tensor& b) { return div(scalar_like(b, a), b); }

}  // namespace tapegrad
