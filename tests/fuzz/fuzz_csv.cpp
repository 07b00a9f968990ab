// Fuzz target: CSV text parsed from memory (nn::parse_csv), with a header and ',' and without one
// and ';'. Only tapegrad::Error may escape; an accepted table has one name and one full column per
// column read, all of finite numbers.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include <tapegrad/tapegrad.hpp>

namespace {
void check(const tapegrad::nn::CsvTable& t) {
    if (t.header.size() != t.columns.size() || t.columns.empty()) std::abort();
    for (const auto& col : t.columns) {
        if (col.size() != t.columns[0].size() || col.empty()) std::abort();
        for (double v : col)
            if (!std::isfinite(v)) std::abort();
    }
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace tapegrad;
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    try {
        check(nn::parse_csv(text, "fuzz.csv"));
    } catch (const tapegrad::Error&) {
    }
    try {
        check(nn::parse_csv(text, "fuzz.csv", {.delimiter = ';', .has_header = false}));
    } catch (const tapegrad::Error&) {
    }
    return 0;
}
