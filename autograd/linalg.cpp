// tapegrad: matrix products through BLAS gemm (OpenBLAS, detail/kernels.hpp). The backward GEMMs
// write straight into the input gradients with beta = 1 when a gradient is already there, so no
// temporary is made for accumulation. linear is the addmm-style fused op: the output starts as the
// bias rows (or a whole addend of the output's shape) and one GEMM adds x @ weight^T onto them.
#include <algorithm>

#include "detail/kernels.hpp"
#include "detail/op.hpp"
#include "linalg.hpp"

namespace tapegrad {

using detail::BackwardCtx;
using detail::dispatch;
using detail::result;

using detail::gemm;

Tensor matmul(const Tensor& a, const Tensor& b) {
    detail::check_defined("matmul", a, "first input");
    detail::check_defined("matmul", b, "second input");
    detail::check_same_dtype("matmul", a, b);
    const Shape sa = a.shape(), sb = b.shape();
    if (sa.size() < 2 || sb.size() < 2)
        throw ShapeError(fmt::format("matmul: {} @ {}: both inputs need at least 2 axes (reshape a vector to "
                                     "[1, n] or [n, 1])",
                                     shape_str(sa), shape_str(sb)));
    const std::size_t K = sa.back();
    if (sb[sb.size() - 2] != K)
        throw ShapeError(fmt::format("matmul: {} @ {}: inner dimensions {} and {} differ", shape_str(sa), shape_str(sb),
                                     K, sb[sb.size() - 2]));
    const std::size_t N = sb.back();
    const bool batched = sb.size() > 2;
    if (batched && (sb.size() != sa.size() || !std::equal(sa.begin(), sa.end() - 2, sb.begin())))
        throw ShapeError(fmt::format("matmul: {} @ {}: a batched product needs equal leading (batch) axes on both "
                                     "inputs",
                                     shape_str(sa), shape_str(sb)));
    // Without a batch: the leading axes of a fold into the rows of one GEMM.
    std::size_t batch = 1;
    for (std::size_t i = 0; i + 2 < sa.size(); ++i) batch *= sa[i];
    const std::size_t M = batched ? sa[sa.size() - 2] : (batch * sa[sa.size() - 2]);
    const std::size_t nb = batched ? batch : 1;
    Shape out(sa.begin(), sa.end() - 1);
    out.push_back(N);

    return dispatch(a.dtype(), [&]<class T>(T) {
        // [M, 0] @ [0, N] is empty on both sides, yet its [M, N] result of zeros can be too large.
        xt::xarray<T> y = detail::new_array<T>("matmul", out);
        const T* A = a.value<T>().data();
        const T* B = b.value<T>().data();
        for (std::size_t i = 0; i < nb; ++i)
            gemm<T>(A + i * M * K, B + i * K * N, y.data() + i * M * N, M, K, N, false, false, T(0));
        return result("matmul", std::move(y), {&a, &b}, [M, K, N, nb](BackwardCtx& c) {
            const T* G = c.grad_out<T>().data();
            const T* A = c.in<T>(0).data();
            const T* B = c.in<T>(1).data();
            T beta{};
            if (c.needs(0)) {  // dA [M,K] = dY [M,N] @ B^T
                T* dA = c.grad_for_gemm<T>(0, beta).data();
                for (std::size_t i = 0; i < nb; ++i)
                    gemm<T>(G + i * M * N, B + i * K * N, dA + i * M * K, M, N, K, false, true, beta);
            }
            if (c.needs(1)) {  // dB [K,N] = A^T @ dY
                T* dB = c.grad_for_gemm<T>(1, beta).data();
                for (std::size_t i = 0; i < nb; ++i)
                    gemm<T>(A + i * M * K, G + i * M * N, dB + i * K * N, K, M, N, true, false, beta);
            }
        });
    });
}

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
    detail::check_defined("linear", x, "input");
    detail::check_defined("linear", weight, "weight");
    detail::check_same_dtype("linear", x, weight);
    const Shape sx = x.shape(), sw = weight.shape();
    const Shape sb = bias.defined() ? bias.shape() : Shape{};
    // For the messages; formatted only when there is an error to report (linear runs every step).
    auto bias_str = [&] { return bias.defined() ? shape_str(sb) : std::string("none"); };
    if (sx.empty() || sw.size() != 2)
        throw ShapeError(fmt::format("linear: input {}, weight {}, bias {}: needs input [.., in] and weight [out, in]",
                                     shape_str(sx), shape_str(sw), bias_str()));
    if (sx.back() != sw[1])
        throw ShapeError(fmt::format("linear: input {}, weight {}, bias {}: input features {} and weight in_features {} "
                                     "differ",
                                     shape_str(sx), shape_str(sw), bias_str(), sx.back(), sw[1]));
    const std::size_t K = sw[1], N = sw[0];
    std::size_t rows = 1;  // the leading axes of x fold into the rows of one GEMM
    for (std::size_t i = 0; i + 1 < sx.size(); ++i) rows *= sx[i];
    Shape out(sx.begin(), sx.end() - 1);
    out.push_back(N);
    // The bias is one row [N] added to every output row, or a whole addend of the output's shape
    // (addmm: a step's precomputed input projection plus h @ W_hh^T in one GEMM, with no add op).
    const bool full_addend = bias.defined() && sb == out && sb != Shape{N};
    if (bias.defined()) {
        detail::check_same_dtype("linear", x, bias);
        if (sb != Shape{N} && !full_addend)
            throw ShapeError(fmt::format("linear: input {}, weight {}, bias {}: the bias must be [{}] or the output's "
                                         "shape {}",
                                         shape_str(sx), shape_str(sw), bias_str(), N, shape_str(out)));
    }
    std::vector<Tensor> inputs{x, weight};
    if (bias.defined()) inputs.push_back(bias);

    return dispatch(x.dtype(), [&]<class T>(T) {
        xt::xarray<T> y = detail::new_array<T>("linear", out);  // (as matmul's: an empty input can give a huge result)
        T beta(0);
        if (bias.defined()) {  // y [rows, N] starts as the bias (every row) or the addend; the GEMM adds onto it
            const T* pb = bias.value<T>().data();
            if (full_addend) std::copy_n(pb, rows * N, y.data());
            else
                for (std::size_t r = 0; r < rows; ++r) std::copy_n(pb, N, y.data() + r * N);
            beta = T(1);
        }
        gemm<T>(x.value<T>().data(), weight.value<T>().data(), y.data(), rows, K, N, false, true, beta);
        return result("linear", std::move(y), inputs, [rows, K, N, full_addend](BackwardCtx& c) {
            const T* G = c.grad_out<T>().data();  // [rows, N]
            T beta{};
            if (c.needs(0)) {  // dx [rows, K] = dY [rows, N] @ W [N, K]
                T* dx = c.grad_for_gemm<T>(0, beta).data();
                gemm<T>(G, c.in<T>(1).data(), dx, rows, N, K, false, false, beta);
            }
            if (c.needs(1)) {  // dW [N, K] = dY^T @ x [rows, K]
                T* dw = c.grad_for_gemm<T>(1, beta).data();
                gemm<T>(G, c.in<T>(0).data(), dw, N, rows, K, true, false, beta);
            }
            if (c.num_inputs() < 3 || !c.needs(2)) return;
            if (full_addend) {  // d addend = dY, handed over (its last use)
                c.accumulate<T>(2, c.take_grad_out<T>());
                return;
            }
            T* db = c.grad_buffer<T>(2).data();  // db [N] = sum of dY's rows
            for (std::size_t r = 0; r < rows; ++r)
                for (std::size_t j = 0; j < N; ++j) db[j] += G[r * N + j];
        });
    });
}

Tensor outer(const Tensor& a, const Tensor& b) {
    detail::check_defined("outer", a, "first input");
    detail::check_defined("outer", b, "second input");
    detail::check_same_dtype("outer", a, b);
    if (a.dim() != 1 || b.dim() != 1)
        throw ShapeError(fmt::format("outer: {} and {}: both inputs must be 1-D", shape_str(a.shape()),
                                     shape_str(b.shape())));
    const std::size_t M = a.numel(), N = b.numel();
    return dispatch(a.dtype(), [&]<class T>(T) {
        xt::xarray<T> y = detail::new_array<T>("outer", {M, N});
        const T* pa = a.value<T>().data();
        const T* pb = b.value<T>().data();
        for (std::size_t i = 0; i < M; ++i)
            for (std::size_t j = 0; j < N; ++j) y.data()[i * N + j] = pa[i] * pb[j];
        return result("outer", std::move(y), {&a, &b}, [M, N](BackwardCtx& c) {
            const T* G = c.grad_out<T>().data();  // [M, N]
            const T* pa = c.in<T>(0).data();
            const T* pb = c.in<T>(1).data();
            if (c.needs(0)) {  // da[i] = sum_j G[i, j] b[j]
                T* da = c.grad_buffer<T>(0).data();
                for (std::size_t i = 0; i < M; ++i)
                    for (std::size_t j = 0; j < N; ++j) da[i] += G[i * N + j] * pb[j];
            }
            if (c.needs(1)) {  // db[j] = sum_i G[i, j] a[i]
                T* db = c.grad_buffer<T>(1).data();
                for (std::size_t i = 0; i < M; ++i)
                    for (std::size_t j = 0; j < N; ++j) db[j] += G[i * N + j] * pa[i];
            }
        });
    });
}

}  // namespace tapegrad
