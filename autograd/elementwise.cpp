// tapegrad: elementwise arithmetic with NumPy broadcasting, and exp/log/pow.
// Each op: checks, forward, and its backward closure right below; broadcast inputs get their
// gradient summed back through BackwardCtx::accumulate_sum_to.
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

Tensor pow(const Tensor& x, double p) {
    detail::check_defined("pow", x);
    return dispatch(x.dtype(), [&]<class T>(T) {
        const T pt = static_cast<T>(p);
        xt::xarray<T> y = xt::pow(x.value<T>(), pt);
        return result("pow", std::move(y), {&x}, [pt](BackwardCtx& c) {
            c.accumulate<T>(0, c.grad_out<T>() * pt * xt::pow(c.in<T>(0), pt - T(1)));
        });
    });
}

Tensor exp(const Tensor& x) {
    detail::check_defined("exp", x);
    return dispatch(x.dtype(), [&]<class T>(T) {
        xt::xarray<T> y = xt::exp(x.value<T>());
        return result("exp", std::move(y), {&x},
                      [](BackwardCtx& c) { c.accumulate<T>(0, c.grad_out<T>() * c.out<T>()); });
    });
}

Tensor log(const Tensor& x) {
    detail::check_defined("log", x);
    return dispatch(x.dtype(), [&]<class T>(T) {
        xt::xarray<T> y = xt::log(x.value<T>());
        return result("log", std::move(y), {&x},
                      [](BackwardCtx& c) { c.accumulate<T>(0, c.grad_out<T>() / c.in<T>(0)); });
    });
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
