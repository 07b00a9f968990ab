// tapegrad: blas_info() and the one-time warning of the first matrix product (see blas_info.hpp).
// OpenBLAS's own query functions are declared here rather than taken from <cblas.h>, which declares
// them only when the cblas.h alternative in use is OpenBLAS's; tapegrad links OpenBLAS itself.
#include "blas_info.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdio>
#include <cstdlib>

#include <fmt/format.h>

extern "C" {
char* openblas_get_corename(void);
char* openblas_get_config(void);
int openblas_get_num_threads(void);
}

namespace tapegrad {

namespace {

bool iequal(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
           });
}

// OpenBLAS's x86-64 kernel sets (driver/others/dynamic.c and the TARGET names of a fixed-core build)
// by the widest instructions their GEMM kernels use.
struct CoreIsa {
    std::string_view core, isa;
};
constexpr std::array kCores{
    CoreIsa{"Katmai", "sse"},        CoreIsa{"Coppermine", "sse"},  CoreIsa{"Northwood", "sse"},
    CoreIsa{"Prescott", "sse"},      CoreIsa{"Banias", "sse"},      CoreIsa{"Atom", "sse"},
    CoreIsa{"Core2", "sse"},         CoreIsa{"Penryn", "sse"},      CoreIsa{"Dunnington", "sse"},
    CoreIsa{"Nehalem", "sse"},       CoreIsa{"Athlon", "sse"},      CoreIsa{"Opteron", "sse"},
    CoreIsa{"Opteron_SSE3", "sse"},  CoreIsa{"Barcelona", "sse"},   CoreIsa{"Nano", "sse"},
    CoreIsa{"Bobcat", "sse"},        CoreIsa{"Sandybridge", "avx"}, CoreIsa{"Bulldozer", "avx"},
    CoreIsa{"Piledriver", "avx"},    CoreIsa{"Steamroller", "avx"}, CoreIsa{"Haswell", "avx2"},
    CoreIsa{"Zen", "avx2"},          CoreIsa{"Excavator", "avx2"},  CoreIsa{"SkylakeX", "avx512"},
    CoreIsa{"Cooperlake", "avx512"}, CoreIsa{"SapphireRapids", "avx512"},
};

// The widest level this CPU runs, as the compiler's runtime checks see it (they include the OS's
// support for the wider registers). "avx512" needs what OpenBLAS's SkylakeX kernels use.
std::string cpu_best_isa() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512cd"))
        return "avx512";
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "avx2";
    if (__builtin_cpu_supports("avx")) return "avx";
    return "sse";
#else
    return "";  // not x86: the core names above do not apply
#endif
}

std::string isa_label(std::string_view isa) {
    if (isa == "sse") return "SSE";
    if (isa == "avx") return "AVX";
    if (isa == "avx2") return "AVX2";
    if (isa == "avx512") return "AVX-512";
    return std::string(isa);
}

}  // namespace

std::string_view blas_core_isa(std::string_view core) {
    for (const auto& c : kCores)
        if (iequal(c.core, core)) return c.isa;
    return "";
}

int isa_rank(std::string_view isa) {
    if (isa == "sse") return 1;
    if (isa == "avx") return 2;
    if (isa == "avx2") return 3;
    if (isa == "avx512") return 4;
    return 0;
}

std::string_view coretype_for_isa(std::string_view isa) {
    // SkylakeX rather than Cooperlake or SapphireRapids: the newer names add only bfloat16 kernels,
    // which tapegrad does not use, and 0.3.21 does not know SapphireRapids.
    if (isa == "avx512") return "SkylakeX";
    if (isa == "avx2") return "Haswell";
    if (isa == "avx") return "Sandybridge";
    return "";
}

std::string blas_core_warning(const BlasInfo& info) {
    const std::string want(coretype_for_isa(info.cpu_best));
    std::string text = fmt::format(
        "tapegrad: {} runs its {} kernels ({}), but this CPU has {}: matrix products can run {}slower than the "
        "CPU allows.",
        info.library.empty() ? "the BLAS" : info.library, info.core, isa_label(info.core_isa),
        isa_label(info.cpu_best),
        isa_rank(info.cpu_best) - isa_rank(info.core_isa) >= 2 ? "several times " : "");
    if (!info.coretype_env.empty() && iequal(info.coretype_env, info.core))
        text += fmt::format(" OPENBLAS_CORETYPE={} asks for these kernels.", info.coretype_env);
    else if (!info.coretype_env.empty())
        text += fmt::format(
            " OPENBLAS_CORETYPE={} is set but OpenBLAS did not use it (it ignores names it does not know).",
            info.coretype_env);
    else
        text += " This OpenBLAS does not recognise the CPU model and fell back to old kernels.";
    if (!want.empty())
        text += fmt::format(
            " Fix: start the program with OPENBLAS_CORETYPE={0} in its environment (export OPENBLAS_CORETYPE={0}); "
            "OpenBLAS reads it only when it loads, so it cannot be changed from inside a running program. "
            "scripts/blas-env.sh sets it for tapegrad's scripts.",
            want);
    text += " Silence this warning with TAPEGRAD_BLAS_WARNING=0.";
    return text;
}

bool blas_warning_due(const BlasInfo& info, const char* warning_env) {
    if (!info.weaker_than_cpu) return false;
    if (warning_env != nullptr && std::string_view(warning_env) == "0") return false;
    // A core the user asked for and got is their choice; OPENBLAS_CORETYPE=SapphireRapids on 0.3.21
    // gives Cooperlake, which is never weaker, so it does not reach here.
    return info.coretype_env.empty() || !iequal(info.coretype_env, info.core);
}

BlasInfo blas_info() {
    BlasInfo info;
    info.library = "OpenBLAS";
    if (const char* s = openblas_get_corename()) info.core = s;
    if (const char* s = openblas_get_config()) info.config = s;
    info.threads = std::max(1, openblas_get_num_threads());
    // OpenBLAS's fixed-core builds name their core in capitals (HASWELL); dynamic ones as "Haswell".
    info.core_isa = std::string(blas_core_isa(info.core));
    info.cpu_best = cpu_best_isa();
    if (const char* s = std::getenv("OPENBLAS_CORETYPE")) info.coretype_env = s;
    info.weaker_than_cpu = isa_rank(info.core_isa) > 0 && isa_rank(info.cpu_best) > isa_rank(info.core_isa);
    if (info.weaker_than_cpu) {
        info.suggested_coretype = std::string(coretype_for_isa(info.cpu_best));
        info.advice = blas_core_warning(info);
    }
    return info;
}

namespace detail {

// Called by the first gemm (detail/kernels.hpp), once per process.
void warn_if_blas_weaker() {
    static const bool done = [] {
        const BlasInfo info = blas_info();
        if (blas_warning_due(info, std::getenv("TAPEGRAD_BLAS_WARNING")))
            std::fprintf(stderr, "%s\n", info.advice.c_str());
        return true;
    }();
    (void)done;
}

}  // namespace detail

}  // namespace tapegrad
