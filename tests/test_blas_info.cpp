// blas_info(): OpenBLAS core names map to the right instruction-set level, the warning names the
// kernels, the CPU and the exact fix, it is due only when the kernels are weaker than the CPU and
// nobody chose or silenced them, and on this machine the library reports its core and threads.
#include <catch2/catch.hpp>

#include <string>

#include <tapegrad/autograd/blas_info.hpp>

using namespace tapegrad;
using Catch::Matchers::Contains;

TEST_CASE("blas_core_isa maps OpenBLAS core names to their instruction-set level", "[blas]") {
    for (const char* core : {"Prescott", "Core2", "Penryn", "Dunnington", "Nehalem", "Atom", "Barcelona",
                             "Opteron_SSE3", "Nano", "Bobcat"})
        CHECK(blas_core_isa(core) == "sse");
    for (const char* core : {"Sandybridge", "Bulldozer", "Piledriver", "Steamroller"})
        CHECK(blas_core_isa(core) == "avx");
    for (const char* core : {"Haswell", "Zen", "Excavator"}) CHECK(blas_core_isa(core) == "avx2");
    for (const char* core : {"SkylakeX", "Cooperlake", "SapphireRapids"}) CHECK(blas_core_isa(core) == "avx512");
    // Fixed-core builds report TARGET names in capitals; OPENBLAS_CORETYPE ignores case too.
    CHECK(blas_core_isa("HASWELL") == "avx2");
    CHECK(blas_core_isa("skylakex") == "avx512");
    CHECK(blas_core_isa("PRESCOTT") == "sse");
    // Names it does not know (other architectures, OpenBLAS's "Unknown") have no level: no warning.
    for (const char* core : {"", "Unknown", "NEOVERSEN1", "POWER9", "Skylake", "Haswel"})
        CHECK(blas_core_isa(core).empty());
}

TEST_CASE("isa_rank orders the levels and coretype_for_isa names a core for each", "[blas]") {
    CHECK(isa_rank("") == 0);
    CHECK(isa_rank("sse") < isa_rank("avx"));
    CHECK(isa_rank("avx") < isa_rank("avx2"));
    CHECK(isa_rank("avx2") < isa_rank("avx512"));
    CHECK(isa_rank("neon") == 0);
    CHECK(coretype_for_isa("avx512") == "SkylakeX");
    CHECK(coretype_for_isa("avx2") == "Haswell");
    CHECK(coretype_for_isa("avx") == "Sandybridge");
    CHECK(coretype_for_isa("sse").empty());
    // Each suggestion is a core of the level it is suggested for.
    for (const char* isa : {"avx", "avx2", "avx512"}) CHECK(blas_core_isa(coretype_for_isa(isa)) == isa);
}

namespace {
// What blas_info() reports for Debian 12's OpenBLAS on a Sapphire Rapids Xeon it does not recognise.
BlasInfo prescott_on_avx512() {
    BlasInfo info;
    info.library = "OpenBLAS";
    info.config = "OpenBLAS 0.3.21 NO_LAPACKE DYNAMIC_ARCH NO_AFFINITY Prescott MAX_THREADS=64";
    info.core = "Prescott";
    info.core_isa = "sse";
    info.threads = 16;
    info.cpu_best = "avx512";
    info.weaker_than_cpu = true;
    info.suggested_coretype = "SkylakeX";
    return info;
}
}  // namespace

TEST_CASE("the warning names the kernels, the CPU, the exact fix and how to silence it", "[blas]") {
    const std::string text = blas_core_warning(prescott_on_avx512());
    CHECK_THAT(text, Contains("OpenBLAS runs its Prescott kernels (SSE)"));
    CHECK_THAT(text, Contains("this CPU has AVX-512"));
    CHECK_THAT(text, Contains("several times slower"));
    CHECK_THAT(text, Contains("export OPENBLAS_CORETYPE=SkylakeX"));
    CHECK_THAT(text, Contains("only when it loads"));
    CHECK_THAT(text, Contains("scripts/blas-env.sh"));
    CHECK_THAT(text, Contains("TAPEGRAD_BLAS_WARNING=0"));
    CHECK(text.find('\n') == std::string::npos);  // one line on stderr

    // One level apart is slower, not "several times".
    BlasInfo zen = prescott_on_avx512();
    zen.core = "Zen";
    zen.core_isa = "avx2";
    const std::string one_level = blas_core_warning(zen);
    CHECK_THAT(one_level, Contains("Zen kernels (AVX2)"));
    CHECK_THAT(one_level, !Contains("several times"));
    CHECK_THAT(one_level, Contains("OPENBLAS_CORETYPE=SkylakeX"));

    // A name OpenBLAS ignored is called out as such.
    BlasInfo typo = prescott_on_avx512();
    typo.coretype_env = "SkylakeY";
    CHECK_THAT(blas_core_warning(typo), Contains("OPENBLAS_CORETYPE=SkylakeY is set but OpenBLAS did not use it"));
    // A core asked for is not called ignored.
    BlasInfo chosen = prescott_on_avx512();
    chosen.coretype_env = "Prescott";
    CHECK_THAT(blas_core_warning(chosen), Contains("OPENBLAS_CORETYPE=Prescott asks for these kernels"));
    CHECK_THAT(blas_core_warning(chosen), !Contains("did not use it"));
}

TEST_CASE("the warning is due only for weaker kernels nobody chose or silenced", "[blas]") {
    BlasInfo info = prescott_on_avx512();
    CHECK(blas_warning_due(info, nullptr));
    CHECK(blas_warning_due(info, "1"));
    CHECK_FALSE(blas_warning_due(info, "0"));

    // The user asked for this core (any case) and got it: their choice.
    info.coretype_env = "prescott";
    CHECK_FALSE(blas_warning_due(info, nullptr));
    // The user asked for a name OpenBLAS does not know, and it fell back to Prescott: still warn.
    info.coretype_env = "SapphireRapidz";
    CHECK(blas_warning_due(info, nullptr));

    BlasInfo fine = prescott_on_avx512();
    fine.core = "SkylakeX";
    fine.core_isa = "avx512";
    fine.weaker_than_cpu = false;
    CHECK_FALSE(blas_warning_due(fine, nullptr));
}

TEST_CASE("blas_info reports the linked OpenBLAS, its core and threads on this machine", "[blas]") {
    const BlasInfo info = blas_info();
    INFO("library=" << info.library << " core=" << info.core << " config=" << info.config
                    << " cpu_best=" << info.cpu_best << " threads=" << info.threads);
    CHECK(info.library == "OpenBLAS");
    CHECK_FALSE(info.core.empty());
    CHECK_THAT(info.config, Contains("OpenBLAS"));
    CHECK(info.threads >= 1);
#if defined(__x86_64__)
    CHECK(isa_rank(info.cpu_best) >= isa_rank("sse"));
    CHECK_FALSE(info.core_isa.empty());  // every x86-64 core of OpenBLAS 0.3.21 has a known level
#endif
    // The fields agree with each other.
    CHECK(info.core_isa == blas_core_isa(info.core));
    CHECK(info.weaker_than_cpu == (isa_rank(info.core_isa) > 0 && isa_rank(info.cpu_best) > isa_rank(info.core_isa)));
    CHECK(info.advice.empty() == !info.weaker_than_cpu);
    CHECK(info.suggested_coretype.empty() == !info.weaker_than_cpu);
}
