// blas_warning_probe: the first matrix product warns exactly once per process when OpenBLAS runs
// kernels weaker than the CPU, and TAPEGRAD_BLAS_WARNING=0 silences it. No CPU at hand is
// misdetected, so this program stands in for OpenBLAS's core query with one that answers "Prescott"
// (a definition in the executable takes precedence over the shared library's).
//   blas_warning_probe            expects the warning once (on a CPU with AVX or better)
//   blas_warning_probe --silenced expects no warning
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include <unistd.h>

#include <tapegrad/autograd/blas_info.hpp>
#include <tapegrad/tapegrad.hpp>

extern "C" char* openblas_get_corename(void) {
    static char name[] = "Prescott";
    return name;
}

int main(int argc, char** argv) {
    const bool silenced = argc > 1 && std::strcmp(argv[1], "--silenced") == 0;
    unsetenv("OPENBLAS_CORETYPE");
    if (silenced) setenv("TAPEGRAD_BLAS_WARNING", "0", 1);
    else unsetenv("TAPEGRAD_BLAS_WARNING");
    if (tapegrad::isa_rank(tapegrad::blas_info().cpu_best) <= tapegrad::isa_rank("sse")) {
        std::printf("blas_warning_probe: this CPU has nothing better than SSE kernels; nothing to check\n");
        return 0;
    }

    // stderr into a file while products of both dtypes run (each gemm<T> is its own instantiation).
    std::FILE* capture = std::tmpfile();
    std::fflush(stderr);
    const int saved = dup(STDERR_FILENO);
    dup2(fileno(capture), STDERR_FILENO);
    for (auto dtype : {tapegrad::f32, tapegrad::f64, tapegrad::f32}) {
        tapegrad::Tensor a = tapegrad::ones({4, 3}, dtype), b = tapegrad::ones({3, 5}, dtype);
        (void)tapegrad::matmul(a, b);
    }
    std::fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);

    std::string text;
    std::rewind(capture);
    for (int c; (c = std::fgetc(capture)) != EOF;) text += static_cast<char>(c);
    std::printf("captured stderr: [%s]\n", text.c_str());
    std::size_t count = 0;
    for (std::size_t at = text.find("tapegrad: OpenBLAS runs its Prescott kernels"); at != std::string::npos;
         at = text.find("tapegrad: OpenBLAS runs its Prescott kernels", at + 1))
        ++count;
    const std::size_t want = silenced ? 0 : 1;
    const bool names_fix = silenced || text.find("export OPENBLAS_CORETYPE=") != std::string::npos;
    if (count != want || !names_fix) {
        std::printf("FAIL: the warning appeared %zu times, want %zu%s\n", count, want,
                    names_fix ? "" : ", and it must name export OPENBLAS_CORETYPE=");
        return 1;
    }
    std::printf("ok: the warning appeared %zu time(s)\n", count);
    return 0;
}
