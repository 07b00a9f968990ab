/// \file
/// \brief Which BLAS the matrix products run on, and whether it uses this CPU fully.
/// \ingroup errors
///
/// Which BLAS the matrix products run on, and whether it uses this CPU fully.
/// OpenBLAS picks its kernels when it loads, from the CPU model it recognises. A CPU newer than the
/// OpenBLAS build is not recognised and gets an old, weak kernel set (Debian 12's OpenBLAS 0.3.21 runs
/// its SSE3 "Prescott" kernels on a Sapphire Rapids Xeon), silently. blas_info() says which kernels
/// run and what the CPU could run, and the first matrix product warns once on stderr when they differ.
#pragma once

#include <string>
#include <string_view>

namespace tapegrad {

/// \addtogroup errors
/// @{

/// Which BLAS the matrix products run on, its kernel set and threads, and whether it uses this CPU
/// fully (from blas_info()).
struct BlasInfo {
    std::string library;        ///< "OpenBLAS" (the BLAS tapegrad links)
    std::string config;         ///< openblas_get_config(), e.g. "OpenBLAS 0.3.21 DYNAMIC_ARCH ... Haswell ..."
    std::string core;           ///< openblas_get_corename(): the kernel set in use, e.g. "Haswell"
    std::string core_isa;       ///< blas_core_isa(core): "sse", "avx", "avx2", "avx512", or "" if unknown
    int threads = 1;            ///< openblas_get_num_threads(): threads one matrix product may use
    std::string cpu_best;       ///< the widest level this CPU (and OS) supports: "avx512", "avx2", "avx", "sse"
    std::string coretype_env;   ///< OPENBLAS_CORETYPE as this process was started with, "" if unset
    bool weaker_than_cpu = false;    ///< core_isa is known and below cpu_best
    std::string suggested_coretype;  ///< the OPENBLAS_CORETYPE that fits cpu_best, when weaker_than_cpu
    std::string advice;              ///< blas_core_warning(*this) when weaker_than_cpu, else ""
};

/// What the linked BLAS and this CPU are, read now (cheap; no matrix product is run).
BlasInfo blas_info();

/// The threads one matrix product may use (OpenBLAS's count; OPENBLAS_NUM_THREADS at start-up,
/// one per core when unset).
int blas_threads();

/// Sets the threads one matrix product may use, from now on, for the whole process (OpenBLAS's
/// openblas_set_num_threads; n < 1 counts as 1). With two or more, a bidirectional layer also runs
/// its two directions at once, each with half of them.
void set_blas_threads(int n);

/// The instruction-set level of an OpenBLAS x86-64 core name (case-insensitive, as OpenBLAS accepts
/// them in OPENBLAS_CORETYPE): "sse" (Prescott, Core2, Penryn, Dunnington, Nehalem, Atom, Barcelona,
/// ...), "avx" (Sandybridge, Bulldozer, Piledriver, Steamroller), "avx2" (Haswell, Zen, Excavator),
/// "avx512" (SkylakeX, Cooperlake, SapphireRapids); "" for a name it does not know.
std::string_view blas_core_isa(std::string_view core);

/// Orders the levels above: "" 0, "sse" 1, "avx" 2, "avx2" 3, "avx512" 4.
int isa_rank(std::string_view isa);

/// The OPENBLAS_CORETYPE to ask for on a CPU whose best level is `isa`: "SkylakeX", "Haswell",
/// "Sandybridge", or "" (nothing better than OpenBLAS's own choice to suggest).
std::string_view coretype_for_isa(std::string_view isa);

/// The warning the first matrix product prints when info.weaker_than_cpu: it names the kernels, the
/// CPU's level, the exact setting that fixes it and how to silence it.
std::string blas_core_warning(const BlasInfo& info);

/// Whether that warning is printed: the core is weaker than the CPU, TAPEGRAD_BLAS_WARNING is not
/// "0", and OPENBLAS_CORETYPE is not set to the core in use (a user who chose a core gets no
/// warning; a name OpenBLAS ignored, a typo, still warns).
bool blas_warning_due(const BlasInfo& info, const char* warning_env);

/// @}
}  // namespace tapegrad
