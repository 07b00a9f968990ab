// Fuzzing helpers for .npz inputs: reading a zip's entries from memory and writing entries back
// as a zip of stored entries with correct sizes and checksums. Random byte flips inside a zip
// almost always break an entry's CRC, so a fuzzer mutating the raw bytes never gets past the zip
// layer; the custom mutator below mutates the entries themselves and rewrites a valid archive, so
// the .npy parser and the checkpoint checks behind it are exercised too.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <zip.h>

#include "../zip_writer.hpp"

namespace tapegrad_fuzz {

using Entries = std::vector<std::pair<std::string, std::string>>;  // (name, bytes)

// A zip of stored entries with correct sizes and checksums.
inline std::string write_zip(const Entries& entries) {
    std::vector<tapegrad::test::ZipEntry> zip(entries.size());
    for (std::size_t i = 0; i < entries.size(); ++i) {
        zip[i].name = entries[i].first;
        zip[i].data = entries[i].second;
    }
    return tapegrad::test::make_zip(zip);
}

// The entries of a zip in memory, or false when it is not a readable zip of small entries.
inline bool read_zip(const std::uint8_t* data, std::size_t size, std::size_t max_entry, Entries& out) {
    if (size == 0) return false;
    zip_error_t err;
    zip_error_init(&err);
    zip_source_t* src = zip_source_buffer_create(data, size, 0, &err);
    if (!src) return false;
    zip_t* za = zip_open_from_source(src, ZIP_RDONLY, &err);
    zip_error_fini(&err);
    if (!za) {
        zip_source_free(src);
        return false;
    }
    bool ok = true;
    const zip_int64_t n = zip_get_num_entries(za, 0);
    for (zip_int64_t i = 0; i < n && ok; ++i) {
        zip_stat_t st;
        zip_stat_init(&st);
        if (zip_stat_index(za, static_cast<zip_uint64_t>(i), 0, &st) != 0 || !(st.valid & ZIP_STAT_SIZE) ||
            !(st.valid & ZIP_STAT_NAME) || st.size > max_entry) {
            ok = false;
            break;
        }
        std::string bytes(static_cast<std::size_t>(st.size), '\0');
        zip_file_t* f = zip_fopen_index(za, static_cast<zip_uint64_t>(i), 0);
        if (!f) {
            ok = false;
            break;
        }
        const zip_int64_t got = st.size ? zip_fread(f, bytes.data(), st.size) : 0;
        zip_fclose(f);
        if (got < 0 || static_cast<zip_uint64_t>(got) != st.size) ok = false;
        else out.emplace_back(st.name, std::move(bytes));
    }
    zip_discard(za);
    return ok;
}

}  // namespace tapegrad_fuzz

extern "C" std::size_t LLVMFuzzerMutate(std::uint8_t* data, std::size_t size, std::size_t max_size);

// Mutates a .npz input: usually one entry's bytes or name (or drops or repeats an entry) and
// rewrites a valid archive; sometimes the raw bytes, so the zip layer itself is fuzzed as well.
extern "C" std::size_t LLVMFuzzerCustomMutator(std::uint8_t* data, std::size_t size, std::size_t max_size,
                                               unsigned int seed) {
    using namespace tapegrad_fuzz;
    std::minstd_rand rng(seed);
    Entries entries;
    if (rng() % 5 == 0 || !read_zip(data, size, max_size, entries) || entries.empty())
        return LLVMFuzzerMutate(data, size, max_size);
    const std::size_t k = rng() % entries.size();
    switch (rng() % 10) {
        case 0: {  // the name
            std::string& name = entries[k].first;
            const std::size_t n = name.size();
            name.resize(n + 16);
            name.resize(LLVMFuzzerMutate(reinterpret_cast<std::uint8_t*>(name.data()), n, name.size()));
            break;
        }
        case 1: entries.push_back(entries[k]); break;  // a duplicate
        case 2: entries.erase(entries.begin() + static_cast<long>(k)); break;
        default: {  // the bytes
            std::string& bytes = entries[k].second;
            const std::size_t n = bytes.size();
            bytes.resize(n + 64);
            bytes.resize(LLVMFuzzerMutate(reinterpret_cast<std::uint8_t*>(bytes.data()), n, bytes.size()));
        }
    }
    const std::string z = write_zip(entries);
    if (z.size() > max_size) return LLVMFuzzerMutate(data, size, max_size);
    std::memcpy(data, z.data(), z.size());
    return z.size();
}
