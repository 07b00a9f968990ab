// A minimal zip writer for tests and fuzzing: stored or deflated entries with correct CRCs, or
// with the sizes and method in their headers replaced by lies, so that a test can hand the loaders
// exactly the damage it means to. No libzip: the point is to write what libzip would refuse to.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace tapegrad::test {

// Little-endian 16- and 32-bit fields, appended to s.
inline void put16(std::string& s, std::uint32_t v) {
    s.push_back(static_cast<char>(v & 0xff));
    s.push_back(static_cast<char>((v >> 8) & 0xff));
}
inline void put32(std::string& s, std::uint32_t v) {
    put16(s, v & 0xffff);
    put16(s, v >> 16);
}

// The CRC-32 zip stores for the uncompressed bytes s.
inline std::uint32_t crc32(const std::string& s) {
    std::uint32_t c = 0xFFFFFFFFu;
    for (unsigned char b : s) {
        c ^= b;
        for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
    }
    return ~c;
}

// One entry of an archive make_zip writes.
struct ZipEntry {
    std::string name;
    std::string data;                          // the uncompressed bytes
    bool deflate = false;                      // stored, or deflated (as one deflate "stored" block)
    std::optional<std::uint32_t> claim_size;   // what the headers say, when it is a lie
    std::optional<std::uint32_t> claim_comp;
    std::optional<std::uint16_t> method;       // the compression method written, when it is a lie
};

// Local headers, data, central directory and end record, with the same (possibly lying) sizes in
// the local and central headers so that only the lie under test is there.
inline std::string make_zip(const std::vector<ZipEntry>& entries) {
    std::string out, cdir;
    for (const ZipEntry& e : entries) {
        std::string payload = e.data;
        if (e.deflate) {  // BFINAL=1, BTYPE=00 (no compression), LEN, NLEN, bytes
            payload = std::string(1, '\x01');
            put16(payload, static_cast<std::uint32_t>(e.data.size()));
            put16(payload, static_cast<std::uint32_t>(~e.data.size() & 0xffff));
            payload += e.data;
        }
        const auto offset = static_cast<std::uint32_t>(out.size());
        const std::uint16_t method = e.method.value_or(e.deflate ? 8 : 0);
        const std::uint32_t crc = crc32(e.data);
        const std::uint32_t comp = e.claim_comp.value_or(static_cast<std::uint32_t>(payload.size()));
        const std::uint32_t size = e.claim_size.value_or(static_cast<std::uint32_t>(e.data.size()));
        auto common = [&](std::string& s) {
            put16(s, 20);      // version needed
            put16(s, 0);       // flags
            put16(s, method);
            put16(s, 0);       // time
            put16(s, 0x21);    // date: 1980-01-01
            put32(s, crc);
            put32(s, comp);
            put32(s, size);
            put16(s, static_cast<std::uint32_t>(e.name.size()));
            put16(s, 0);       // extra field length
        };
        put32(out, 0x04034b50);
        common(out);
        out += e.name + payload;
        put32(cdir, 0x02014b50);
        put16(cdir, 20);  // version made by
        common(cdir);
        put16(cdir, 0);   // comment length
        put16(cdir, 0);   // disk
        put16(cdir, 0);   // internal attributes
        put32(cdir, 0);   // external attributes
        put32(cdir, offset);
        cdir += e.name;
    }
    const auto cd_offset = static_cast<std::uint32_t>(out.size());
    out += cdir;
    put32(out, 0x06054b50);
    put16(out, 0);
    put16(out, 0);
    put16(out, static_cast<std::uint32_t>(entries.size()));
    put16(out, static_cast<std::uint32_t>(entries.size()));
    put32(out, static_cast<std::uint32_t>(cdir.size()));
    put32(out, cd_offset);
    put16(out, 0);
    return out;
}

}  // namespace tapegrad::test
