// tapegrad: matrix products through BLAS gemm (xtensor-blas on OpenBLAS). The backward GEMMs
// write straight into the input gradients with beta = 1 when a gradient is already there, so no
// temporary is made for accumulation.
#include <xtensor-blas/xblas.hpp>
#include <xtensor/xadapt.hpp>

#include "detail/op.hpp"
#include "linalg.hpp"

namespace tapegrad {

using detail::BackwardCtx;
using detail::dispatch;
using detail::result;

namespace {
// C[m, n] = op(A) @ op(B) + beta C, on row-major buffers; op(X) is X or X^T.
// A is stored [m, k] (or [k, m] when ta), B is stored [k, n] (or [n, k] when tb).
template <class T>
void gemm(const T* A, const T* B, T* C, std::size_t m, std::size_t k, std::size_t n, bool ta, bool tb, T beta) {
    if (m == 0 || n == 0) return;
    auto c = xt::adapt(C, m * n, xt::no_ownership(), std::array<std::size_t, 2>{m, n});
    if (k == 0) {
        if (beta == T(0)) c.fill(T(0));
        return;
    }
    const auto a = xt::adapt(const_cast<T*>(A), m * k, xt::no_ownership(),
                             ta ? std::array<std::size_t, 2>{k, m} : std::array<std::size_t, 2>{m, k});
    const auto b = xt::adapt(const_cast<T*>(B), k * n, xt::no_ownership(),
                             tb ? std::array<std::size_t, 2>{n, k} : std::array<std::size_t, 2>{k, n});
    xt::blas::gemm(a, b, c, ta, tb, T(1), beta);
}
}  // namespace

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
        xt::xarray<T> y = xt::xarray<T>::from_shape(out);
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

}  // namespace tapegrad
