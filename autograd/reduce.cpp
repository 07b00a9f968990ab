// tapegrad: reductions. The gradient of a reduction is the output gradient broadcast back over
// the reduced axes (divided by the count for mean).
#include <xtensor/xbroadcast.hpp>
#include <xtensor/xtensor.hpp>

#include "detail/op.hpp"
#include "reduce.hpp"

namespace tapegrad {

using detail::BackwardCtx;
using detail::dispatch;
using detail::result;

namespace {
// Sum of all elements, scaled (1 for sum, 1/n for mean).
Tensor reduce_all(const char* op, const Tensor& x, bool is_mean) {
    detail::check_defined(op, x);
    return dispatch(x.dtype(), [&]<class T>(T) {
        const auto& v = x.value<T>();
        const T scale = is_mean ? T(1) / static_cast<T>(v.size()) : T(1);
        xt::xarray<T> y = xt::xarray<T>::from_shape(Shape{});
        y() = detail::sum_all(v) * scale;
        return result(op, std::move(y), {&x}, [scale](BackwardCtx& c) {
            xt::xarray<T> g = xt::xarray<T>::from_shape(c.in<T>(0).shape());
            g.fill(c.grad_out<T>()() * scale);
            c.accumulate<T>(0, std::move(g));
        });
    });
}

Tensor reduce_axis(const char* op, const Tensor& x, long axis, bool keepdims, bool is_mean) {
    detail::check_defined(op, x);
    const Shape in_shape = x.shape();
    const std::size_t ax = detail::norm_axis(op, axis, in_shape);
    Shape kept = in_shape;
    kept[ax] = 1;
    return dispatch(x.dtype(), [&]<class T>(T) {
        const T scale = is_mean ? T(1) / static_cast<T>(in_shape[ax]) : T(1);
        xt::xarray<T> y = detail::sum_axis(x.value<T>(), ax);
        if (is_mean) y *= scale;
        if (!keepdims) {
            Shape dropped = in_shape;
            dropped.erase(dropped.begin() + static_cast<long>(ax));
            y.reshape(dropped);
        }
        return result(op, std::move(y), {&x}, [kept, scale](BackwardCtx& c) {
            auto g = xt::reshape_view(c.grad_out<T>(), kept);
            c.accumulate<T>(0, xt::broadcast(g * scale, c.in<T>(0).shape()));
        });
    });
}
}  // namespace

Tensor sum(const Tensor& x) { return reduce_all("sum", x, false); }
Tensor mean(const Tensor& x) { return reduce_all("mean", x, true); }
Tensor sum(const Tensor& x, long axis, bool keepdims) { return reduce_axis("sum", x, axis, keepdims, false); }
Tensor mean(const Tensor& x, long axis, bool keepdims) { return reduce_axis("mean", x, axis, keepdims, true); }

}  // namespace tapegrad
