// tapegrad_blas_info: prints what tapegrad::blas_info() finds, one key=value per line, for
// scripts/blas-env.sh (which picks OPENBLAS_CORETYPE from it before starting programs) and for a
// user asking why matrix products are slow. Exits 0 whatever it finds.
#include <cstdio>

#include <tapegrad/autograd/blas_info.hpp>

int main() {
    const tapegrad::BlasInfo info = tapegrad::blas_info();
    std::printf("library=%s\n", info.library.c_str());
    std::printf("config=%s\n", info.config.c_str());
    std::printf("core=%s\n", info.core.c_str());
    std::printf("core_isa=%s\n", info.core_isa.c_str());
    std::printf("threads=%d\n", info.threads);
    std::printf("cpu_best=%s\n", info.cpu_best.c_str());
    std::printf("weaker_than_cpu=%d\n", info.weaker_than_cpu ? 1 : 0);
    std::printf("suggested_coretype=%s\n", info.suggested_coretype.c_str());
    if (info.weaker_than_cpu) std::fprintf(stderr, "%s\n", info.advice.c_str());
    return 0;
}
