// Fuzz target: vocabularies. An input starting with the .npy magic is a stored vocabulary tensor
// (nn::from_npy, then Vocab::from_tensor); anything else is text to build one from (Vocab::build,
// through the strict UTF-8 decoder). Only tapegrad::Error may escape; an accepted vocabulary must
// encode and decode its own symbols exactly.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include <tapegrad/tapegrad.hpp>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace tapegrad;
    const std::string bytes(reinterpret_cast<const char*>(data), size);
    try {
        const nn::Vocab v = bytes.rfind("\x93NUMPY", 0) == 0 ? nn::Vocab::from_tensor(nn::from_npy(bytes, "fuzz.npy"))
                                                             : nn::Vocab::build(bytes);
        const std::string text = nn::utf8_encode(v.symbols());
        const std::vector<std::int64_t> ids = v.encode_vector(text);
        if (ids.size() != v.size() || v.decode(ids) != text) std::abort();
        for (std::size_t i = 0; i < ids.size(); ++i)
            if (ids[i] != static_cast<std::int64_t>(i)) std::abort();
        const nn::Vocab back = nn::Vocab::from_tensor(v.to_tensor());
        if (back.symbols() != v.symbols() || back.has_unknown() != v.has_unknown()) std::abort();
    } catch (const tapegrad::Error&) {
    }
    return 0;
}
