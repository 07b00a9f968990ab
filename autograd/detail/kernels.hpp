// tapegrad internal: the hot kernels. The one GEMM every matrix op calls, straight into OpenBLAS's
// cblas interface (a training step issues thousands of small products, so the call itself must
// cost nothing beyond BLAS), and vectorised (xsimd) tanh and exp for the fused recurrent op and the
// fused cross-entropy, where a scalar libm call per element showed in profiles.
#pragma once

#include <atomic>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <type_traits>

#include <cblas.h>

#include "simd.hpp"

namespace tapegrad::detail {

// Warns once on stderr when OpenBLAS runs kernels weaker than this CPU (blas_info.cpp).
void warn_if_blas_weaker();
// The first matrix product makes that check; later ones pay only the test of a static's guard.
inline void check_blas_once() {
    static const bool checked = (warn_if_blas_weaker(), true);
    (void)checked;
}

// Matrix products running now in this process (run_two stops OpenBLAS's idle workers only when
// none is: parallel.cpp).
inline std::atomic<int> gemms_in_flight{0};

// C[m, n] = op(A) @ op(B) + beta C, on row-major buffers whose rows lie lda, ldb and ldc elements
// apart (a block of columns of a wider array); op(X) is X or X^T. A is stored [m, k] (or [k, m] when
// ta), B is stored [k, n] (or [n, k] when tb). k = 0 gives beta C (zeros when beta is 0, whatever C
// held).
template <class T>
void gemm_ld(const T* A, std::size_t lda, const T* B, std::size_t ldb, T* C, std::size_t ldc, std::size_t m,
             std::size_t k, std::size_t n, bool ta, bool tb, T beta) {
    if (m == 0 || n == 0) return;
    if (k == 0) {
        for (std::size_t i = 0; i < m; ++i) {
            T* row = C + i * ldc;
            if (beta == T(0)) std::memset(row, 0, n * sizeof(T));
            else if (beta != T(1))
                for (std::size_t j = 0; j < n; ++j) row[j] *= beta;
        }
        return;
    }
    check_blas_once();
    const auto M = static_cast<blasint>(m), N = static_cast<blasint>(n), K = static_cast<blasint>(k);
    const auto LDA = static_cast<blasint>(lda), LDB = static_cast<blasint>(ldb), LDC = static_cast<blasint>(ldc);
    const CBLAS_TRANSPOSE opa = ta ? CblasTrans : CblasNoTrans, opb = tb ? CblasTrans : CblasNoTrans;
    gemms_in_flight.fetch_add(1);
    if constexpr (std::is_same_v<T, float>)
        cblas_sgemm(CblasRowMajor, opa, opb, M, N, K, 1.0f, A, LDA, B, LDB, beta, C, LDC);
    else
        cblas_dgemm(CblasRowMajor, opa, opb, M, N, K, 1.0, A, LDA, B, LDB, beta, C, LDC);
    gemms_in_flight.fetch_sub(1);
}

// gemm_ld on whole arrays: rows as long as the matrices are wide.
template <class T>
void gemm(const T* A, const T* B, T* C, std::size_t m, std::size_t k, std::size_t n, bool ta, bool tb, T beta) {
    gemm_ld<T>(A, ta ? m : k, B, tb ? k : n, C, n, m, k, n, ta, tb, beta);
}

#if defined(TAPEGRAD_AVX2_KERNELS)
// The same kernels built for AVX2 + FMA (kernels_avx2.cpp), used when the CPU has both.
namespace avx2 {
void tanh_inplace(float* p, std::size_t n);
void tanh_inplace(double* p, std::size_t n);
void sigmoid_inplace(float* p, std::size_t n);
void sigmoid_inplace(double* p, std::size_t n);
double exp_shifted(const float* in, float shift, float* out, std::size_t n);
double exp_shifted(const double* in, double shift, double* out, std::size_t n);
}  // namespace avx2
inline bool use_avx2() {
    static const bool yes = [] {
        __builtin_cpu_init();  // needed when first called before the constructors have run
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    }();
    return yes;
}
#else
inline bool use_avx2() { return false; }
#endif

// p[i] = tanh(p[i]), vectorised.
template <class T>
void tanh_inplace(T* p, std::size_t n) {
#if defined(TAPEGRAD_AVX2_KERNELS)
    if (use_avx2()) return avx2::tanh_inplace(p, n);
#endif
    simd::tanh_inplace<xsimd::default_arch>(p, n);
}

// p[i] = 1 / (1 + exp(-p[i])), vectorised.
template <class T>
void sigmoid_inplace(T* p, std::size_t n) {
#if defined(TAPEGRAD_AVX2_KERNELS)
    if (use_avx2()) return avx2::sigmoid_inplace(p, n);
#endif
    simd::sigmoid_inplace<xsimd::default_arch>(p, n);
}

// out[i] = exp(in[i] - shift), vectorised; returns the sum of out, accumulated in double.
template <class T>
double exp_shifted(const T* in, T shift, T* out, std::size_t n) {
#if defined(TAPEGRAD_AVX2_KERNELS)
    if (use_avx2()) return avx2::exp_shifted(in, shift, out, n);
#endif
    return simd::exp_shifted<xsimd::default_arch>(in, shift, out, n);
}

}  // namespace tapegrad::detail
