// blas_gemm: the median time of one float32 GEMM C[M,N] = A[M,K] B[K,N] (row-major, no transpose)
// through the cblas interface of whichever BLAS it is linked with, so that OpenBLAS's kernel sets
// (OPENBLAS_CORETYPE) and other BLAS libraries can be compared at tapegrad's shapes. No tapegrad
// inside; blas_gemm.sh builds and runs it.
//   blas_gemm M K N [RUNS]   prints "M K N median_us gflops"
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

// The cblas prototype, declared here so one source builds against any BLAS's library file.
extern "C" void cblas_sgemm(int layout, int transa, int transb, int m, int n, int k, float alpha, const float* a,
                            int lda, const float* b, int ldb, float beta, float* c, int ldc);
constexpr int kRowMajor = 101, kNoTrans = 111;

int main(int argc, char** argv) {
    if (argc < 4) {
        std::fprintf(stderr, "usage: blas_gemm M K N [RUNS]\n");
        return 2;
    }
    const int M = std::atoi(argv[1]), K = std::atoi(argv[2]), N = std::atoi(argv[3]);
    const int runs = argc > 4 ? std::atoi(argv[4]) : 9;
    std::vector<float> a(static_cast<std::size_t>(M) * K), b(static_cast<std::size_t>(K) * N),
        c(static_cast<std::size_t>(M) * N);
    for (std::size_t i = 0; i < a.size(); ++i) a[i] = static_cast<float>(i % 7) * 0.1f - 0.3f;
    for (std::size_t i = 0; i < b.size(); ++i) b[i] = static_cast<float>(i % 5) * 0.1f - 0.2f;
    auto gemm = [&] {
        cblas_sgemm(kRowMajor, kNoTrans, kNoTrans, M, N, K, 1.0f, a.data(), K, b.data(), N, 0.0f, c.data(), N);
    };
    using clock = std::chrono::steady_clock;
    // Calls per run: enough for about 50 ms, judged from a warm-up.
    gemm();
    auto t0 = clock::now();
    int calls = 0;
    while (clock::now() - t0 < std::chrono::milliseconds(50)) gemm(), ++calls;
    std::vector<double> us;
    for (int r = 0; r < runs; ++r) {
        const auto start = clock::now();
        for (int i = 0; i < calls; ++i) gemm();
        us.push_back(std::chrono::duration<double, std::micro>(clock::now() - start).count() / calls);
    }
    std::sort(us.begin(), us.end());
    const double median = us[us.size() / 2];
    std::printf("%d %d %d %.2f %.2f\n", M, K, N, median, 2.0 * M * K * N / median / 1e3);
    return c[0] == 12345.0f;  // keeps the products from being optimised away
}
