// Fuzz target: an .npz archive read from memory (nn::load_tensors_from_memory). Only
// tapegrad::Error may escape; the entries it accepts have distinct names and readable values.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <set>
#include <string_view>

#include <tapegrad/tapegrad.hpp>

#include "zip_entries.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace tapegrad;
    try {
        const nn::NamedTensors entries =
            nn::load_tensors_from_memory(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz.npz");
        std::set<std::string> names;
        for (const auto& [name, t] : entries) {
            if (!names.insert(name).second) std::abort();  // duplicates must have been refused
            double sum = 0;
            for (std::size_t i = 0; i < t.numel(); ++i) sum += t.at(i);
            (void)sum;
        }
    } catch (const tapegrad::Error&) {
    }
    return 0;
}
