// tapegrad: activation functions. Their backward reuses the saved output where the derivative
// is a function of it (tanh' = 1 - y^2, sigmoid' = y (1 - y)).
#include <xtensor/xmath.hpp>
#include <xtensor/xoperation.hpp>

#include "detail/op.hpp"
#include "activation.hpp"

namespace tapegrad {

using detail::BackwardCtx;
using detail::dispatch;
using detail::result;

Tensor tanh(const Tensor& x) {
    detail::check_defined("tanh", x);
    return dispatch(x.dtype(), [&]<class T>(T) {
        xt::xarray<T> y = xt::tanh(x.value<T>());
        return result("tanh", std::move(y), {&x}, [](BackwardCtx& c) {
            const auto& y = c.out<T>();
            c.accumulate<T>(0, c.grad_out<T>() * (T(1) - y * y));
        });
    });
}

Tensor sigmoid(const Tensor& x) {
    detail::check_defined("sigmoid", x);
    return dispatch(x.dtype(), [&]<class T>(T) {
        // 1 / (1 + e^-x) overflows only to e^-x = inf, giving 0: stable for both signs.
        xt::xarray<T> y = T(1) / (T(1) + xt::exp(-x.value<T>()));
        return result("sigmoid", std::move(y), {&x}, [](BackwardCtx& c) {
            const auto& y = c.out<T>();
            c.accumulate<T>(0, c.grad_out<T>() * y * (T(1) - y));
        });
    });
}

Tensor relu(const Tensor& x) {
    detail::check_defined("relu", x);
    return dispatch(x.dtype(), [&]<class T>(T) {
        xt::xarray<T> y = xt::maximum(x.value<T>(), T(0));
        return result("relu", std::move(y), {&x}, [](BackwardCtx& c) {
            c.accumulate<T>(0, xt::where(c.in<T>(0) > T(0), c.grad_out<T>(), T(0)));
        });
    });
}

}  // namespace tapegrad
