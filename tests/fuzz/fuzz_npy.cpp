// Fuzz target: one .npy array parsed from memory (nn::from_npy). Only tapegrad::Error may escape
// the loader; an array it accepts must survive a write-and-read round trip unchanged.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include <tapegrad/tapegrad.hpp>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace tapegrad;
    try {
        const Tensor t = nn::from_npy(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz.npy");
        // Reading every element: an array smaller than its shape would be caught here.
        double sum = 0;
        for (std::size_t i = 0; i < t.numel(); ++i) sum += t.at(i);
        (void)sum;
        const std::string bytes = nn::to_npy(t);
        const Tensor back = nn::from_npy(bytes, "round trip");
        if (back.shape() != t.shape() || back.dtype() != t.dtype() || nn::to_npy(back) != bytes) std::abort();
    } catch (const tapegrad::Error&) {
    }
    return 0;
}
