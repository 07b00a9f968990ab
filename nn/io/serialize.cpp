// tapegrad::nn: .npz reading and writing. The zip container comes from libzip; the .npy format
// (magic, version, a little Python-dict header, raw little-endian data) is small enough to write
// here, with every length and size checked before anything is read. Besides float32/float64
// tensors, entries may be int64, int32, bool or string arrays (what PyTorch exports and NumPy
// writes for lengths, step counters and text), and a module can take part of a state dict.
#include "serialize.hpp"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <string_view>

#include <fmt/format.h>
#include <zip.h>

#include "../data/text.hpp"

namespace tapegrad::nn {

namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr std::size_t kMaxHeader = 1 << 16;           // a real header is ~100 bytes
constexpr std::uint64_t kMaxEntryBytes = 1ull << 34;  // 16 GiB: anything larger is treated as corrupt
constexpr std::size_t kMaxDims = 32;                  // NumPy's own limit
// Deflate cannot expand data by more than 1032:1, so an entry claiming more is lying about its size.
constexpr std::uint64_t kMaxDeflateRatio = 1032;
constexpr const char* kSupported =
    "float32 '<f4', float64 '<f8', int64 '<i8', int32 '<i4', bool '|b1', str '<U<n>' and bytes '|S<n>'";

std::size_t numel_of(const Shape& s) {
    std::size_t n = 1;
    for (std::size_t d : s) n *= d;
    return n;
}

// Names for messages: 'a', 'b', 'c' (and N more), or "none".
std::string quoted_list(const std::vector<std::string>& names, std::size_t limit = 8) {
    if (names.empty()) return "none";
    std::string out;
    for (std::size_t i = 0; i < names.size() && i < limit; ++i) out += fmt::format("{}'{}'", i ? ", " : "", names[i]);
    if (names.size() > limit) out += fmt::format(" (and {} more)", names.size() - limit);
    return out;
}

void append_utf8(std::string& out, char32_t c) {
    if (c < 0x80) {
        out += static_cast<char>(c);
    } else if (c < 0x800) {
        out += static_cast<char>(0xC0 | (c >> 6));
        out += static_cast<char>(0x80 | (c & 0x3F));
    } else if (c < 0x10000) {
        out += static_cast<char>(0xE0 | (c >> 12));
        out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (c & 0x3F));
    } else {
        out += static_cast<char>(0xF0 | (c >> 18));
        out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (c & 0x3F));
    }
}

std::uint32_t read_u32(const char* p) {
    return static_cast<std::uint32_t>(static_cast<unsigned char>(p[0])) |
           static_cast<std::uint32_t>(static_cast<unsigned char>(p[1])) << 8 |
           static_cast<std::uint32_t>(static_cast<unsigned char>(p[2])) << 16 |
           static_cast<std::uint32_t>(static_cast<unsigned char>(p[3])) << 24;
}
void put_u32(std::string& s, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

// The start of a .npy file: magic, version 1.0, and the header dict padded with spaces so that
// the data starts on a 64-byte boundary, ending in '\n'.
std::string npy_header(const std::string& descr, const Shape& s) {
    std::string dims;
    for (std::size_t d : s) dims += fmt::format("{}, ", d);
    if (s.size() > 1) dims.resize(dims.size() - 2);  // (3,) keeps its comma, (2, 3) does not
    else if (s.size() == 1) dims.pop_back();
    std::string header = fmt::format("{{'descr': '{}', 'fortran_order': False, 'shape': ({}), }}", descr, dims);
    const std::size_t total = 10 + header.size() + 1;
    header.append((64 - total % 64) % 64, ' ');
    header.push_back('\n');
    std::string out(kMagic, 6);
    out.push_back('\x01');
    out.push_back('\x00');
    out.push_back(static_cast<char>(header.size() & 0xff));
    out.push_back(static_cast<char>((header.size() >> 8) & 0xff));
    return out + header;
}

template <class T>
void append_raw(std::string& out, const xt::xarray<T>& a) {
    out.append(reinterpret_cast<const char*>(a.data()), a.size() * sizeof(T));
}

// Strings as '<U<n>' (UTF-32 little-endian, n code points each, NUL-padded) or '|S<n>' (n bytes
// each, NUL-padded), n the longest value (at least 1, as NumPy). `what` names the array in errors.
std::string string_npy(const StringArray& s, const std::string& what) {
    auto ends_in_nul = [&](std::size_t i) {
        return ValueError(fmt::format("{}: element {} ends with a NUL character, which a .npy string array "
                                      "cannot keep (NumPy strips trailing NULs)",
                                      what, i));
    };
    if (s.bytes) {
        std::size_t n = 1;
        for (std::size_t i = 0; i < s.values.size(); ++i) {
            if (!s.values[i].empty() && s.values[i].back() == '\0') throw ends_in_nul(i);
            n = std::max(n, s.values[i].size());
        }
        std::string out = npy_header(fmt::format("|S{}", n), s.shape);
        for (const std::string& v : s.values) {
            out += v;
            out.append(n - v.size(), '\0');
        }
        return out;
    }
    std::vector<std::vector<char32_t>> cps(s.values.size());
    std::size_t n = 1;
    for (std::size_t i = 0; i < s.values.size(); ++i) {
        try {
            cps[i] = utf8_decode(s.values[i], "utf8");
        } catch (const ValueError& e) {
            throw ValueError(fmt::format("{}: element {} is not text ({}); save raw bytes with "
                                         "StringArray{{.bytes = true}}",
                                         what, i, e.what()));
        }
        if (!cps[i].empty() && cps[i].back() == 0) throw ends_in_nul(i);
        n = std::max(n, cps[i].size());
    }
    std::string out = npy_header(fmt::format("<U{}", n), s.shape);
    for (const auto& v : cps) {
        for (char32_t c : v) put_u32(out, c);
        for (std::size_t k = v.size(); k < n; ++k) put_u32(out, 0);
    }
    return out;
}

// The .npy bytes of any array; `what` names it in errors.
std::string npy_bytes(const NpyArray& a, const std::string& what) {
    struct Writer {
        const std::string& what;
        std::string operator()(const Tensor& t) const {
            if (!t.defined()) throw ValueError(fmt::format("{} is an undefined tensor", what));
            std::string out = npy_header(t.dtype() == f64 ? "<f8" : "<f4", t.shape());
            std::visit([&](const auto& x) { append_raw(out, x); }, t.array());
            return out;
        }
        std::string operator()(const xt::xarray<std::int64_t>& x) const {
            std::string out = npy_header("<i8", Shape(x.shape().begin(), x.shape().end()));
            append_raw(out, x);
            return out;
        }
        std::string operator()(const xt::xarray<std::int32_t>& x) const {
            std::string out = npy_header("<i4", Shape(x.shape().begin(), x.shape().end()));
            append_raw(out, x);
            return out;
        }
        std::string operator()(const xt::xarray<bool>& x) const {
            std::string out = npy_header("|b1", Shape(x.shape().begin(), x.shape().end()));
            for (std::size_t i = 0; i < x.size(); ++i) out.push_back(x.data()[i] ? '\x01' : '\x00');
            return out;
        }
        std::string operator()(const StringArray& s) const { return string_npy(s, what); }
    };
    return std::visit(Writer{what}, a.value());
}

// Text from a hostile file, shortened and with non-printable bytes escaped, for an error message.
std::string excerpt(std::string_view s, std::size_t limit = 40) {
    std::string out = "'";
    for (std::size_t i = 0; i < s.size() && i < limit; ++i) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c >= 0x20 && c < 0x7F) out += static_cast<char>(c);
        else out += fmt::format("\\x{:02x}", c);
    }
    if (s.size() > limit) out += "...";
    return out + "'";
}

// The .npy header: a Python dict literal as numpy writes it,
// {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }, padded with spaces and ending in '\n'.
// Parsed strictly: exactly these three keys, each once, nothing after the closing brace but padding.
struct NpyHeader {
    std::string descr;
    bool fortran_order = false;
    Shape shape;
};

class HeaderParser {
public:
    HeaderParser(std::string_view text, const std::string& where) : s_(text), where_(where) {}

    NpyHeader parse() {
        NpyHeader h;
        bool seen_descr = false, seen_order = false, seen_shape = false;
        skip_space();
        expect('{', "the header does not start with '{'");
        for (;;) {
            skip_space();
            if (peek() == '}') break;
            const std::string key = string_literal("a key");
            skip_space();
            expect(':', fmt::format("no ':' after the key {}", excerpt(key)));
            skip_space();
            auto once = [&](bool& seen) {
                if (seen) throw bad(fmt::format("the header has the key {} twice", excerpt(key)));
                seen = true;
            };
            if (key == "descr") {
                once(seen_descr);
                if (peek() == '[') throw bad("structured dtypes (a list 'descr') are not supported");
                h.descr = string_literal("the 'descr' value");
            } else if (key == "fortran_order") {
                once(seen_order);
                h.fortran_order = boolean();
            } else if (key == "shape") {
                once(seen_shape);
                h.shape = tuple();
            } else {
                throw bad(fmt::format("unknown header key {}", excerpt(key)));
            }
            skip_space();
            if (peek() == ',') {
                ++i_;
                continue;
            }
            skip_space();
            if (peek() != '}') throw bad(fmt::format("expected ',' or '}}' in the header at byte {}", i_));
        }
        ++i_;  // '}'
        while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\n' || s_[i_] == '\r' || s_[i_] == '\0')) ++i_;
        if (i_ != s_.size()) {
            std::string_view rest = s_.substr(i_);
            while (!rest.empty() && (rest.back() == ' ' || rest.back() == '\n')) rest.remove_suffix(1);
            throw bad(fmt::format("unexpected {} after the header's closing '}}'", excerpt(rest)));
        }
        if (!seen_descr) throw bad("the header has no 'descr'");
        if (!seen_order) throw bad("the header has no 'fortran_order'");
        if (!seen_shape) throw bad("the header has no 'shape'");
        return h;
    }

private:
    FormatError bad(const std::string& why) const {
        return FormatError(fmt::format("{}: not a valid .npy array: {}", where_, why));
    }
    char peek() const {
        if (i_ >= s_.size()) throw bad("the header ends in the middle of its dict");
        return s_[i_];
    }
    void skip_space() {
        while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n')) ++i_;
    }
    void expect(char c, const std::string& why) {
        if (peek() != c) throw bad(why);
        ++i_;
    }
    std::string string_literal(const char* what) {
        const char q = peek();
        if (q != '\'' && q != '"') throw bad(fmt::format("expected a quoted string for {} at byte {}", what, i_));
        const std::size_t end = s_.find(q, i_ + 1);
        if (end == std::string_view::npos) throw bad(fmt::format("{} is an unterminated string", what));
        std::string out(s_.substr(i_ + 1, end - i_ - 1));
        i_ = end + 1;
        return out;
    }
    bool boolean() {
        for (const std::string_view word : {"True", "False"}) {
            if (s_.substr(i_, word.size()) == word) {
                i_ += word.size();
                return word == "True";
            }
        }
        throw bad(fmt::format("'fortran_order' is {}, expected True or False", excerpt(s_.substr(i_, 10))));
    }
    Shape tuple() {
        expect('(', "'shape' is not a tuple");
        Shape shape;
        for (;;) {
            skip_space();
            if (peek() == ')') break;
            if (peek() < '0' || peek() > '9')
                throw bad(fmt::format("bad character {} in 'shape'", excerpt(s_.substr(i_, 1))));
            std::uint64_t d = 0;
            while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') {
                d = d * 10 + static_cast<std::uint64_t>(s_[i_] - '0');
                if (d > kMaxEntryBytes) throw bad("a dimension in 'shape' is absurdly large");
                ++i_;
            }
            if (shape.size() == kMaxDims) throw bad(fmt::format("'shape' has more than {} dimensions", kMaxDims));
            shape.push_back(static_cast<std::size_t>(d));
            skip_space();
            if (peek() == ',') ++i_;
            else if (peek() != ')') throw bad(fmt::format("expected ',' or ')' in 'shape' at byte {}", i_));
        }
        ++i_;  // ')'
        return shape;
    }

    std::string_view s_;
    const std::string& where_;
    std::size_t i_ = 0;
};

// A dtype this loader reads, with the size of one element in bytes.
struct NpyDescr {
    NpyType type;
    std::uint64_t item;
};

// n of '<U<n>' or '|S<n>', or 0 when `digits` is not a positive number of at most 9 digits.
std::uint64_t string_length(std::string_view digits) {
    if (digits.empty() || digits.size() > 9) return 0;
    std::uint64_t n = 0;
    for (char c : digits) {
        if (c < '0' || c > '9') return 0;
        n = n * 10 + static_cast<std::uint64_t>(c - '0');
    }
    return n;
}

template <class Bad>
NpyDescr classify(const std::string& d, const Bad& bad) {
    if (d == "<f4") return {NpyType::float32, 4};
    if (d == "<f8") return {NpyType::float64, 8};
    if (d == "<i8") return {NpyType::int64, 8};
    if (d == "<i4") return {NpyType::int32, 4};
    if (d == "|b1") return {NpyType::boolean, 1};
    const bool unicode = d.rfind("<U", 0) == 0, bytes = d.rfind("|S", 0) == 0;
    if (unicode || bytes) {
        const std::uint64_t n = string_length(std::string_view(d).substr(2));
        if (n == 0)
            throw bad(fmt::format("dtype {} does not give a string length from 1 to 999999999", excerpt(d)));
        return unicode ? NpyDescr{NpyType::unicode, 4 * n} : NpyDescr{NpyType::bytes, n};
    }
    if (d == ">f4" || d == ">f8" || d == ">i8" || d == ">i4" || d.rfind(">U", 0) == 0)
        throw bad(fmt::format("dtype {} is big-endian; only little-endian byte order is supported (save with "
                              "arr.astype('{}'))",
                              excerpt(d), "<" + d.substr(1)));
    throw bad(fmt::format("dtype {} is not supported (supported: {})", excerpt(d), kSupported));
}

// Parses one .npy blob; `where` names the file and entry for messages. Every size is checked
// against the bytes actually present before anything is allocated. `float_only`: a valid array of
// another type is refused by name (from_npy returns a Tensor).
NpyArray parse_npy(std::string_view b, const std::string& where, bool float_only) {
    auto bad = [&](const std::string& why) {
        return FormatError(fmt::format("{}: not a valid .npy array: {}", where, why));
    };
    if (b.size() < 6 || std::memcmp(b.data(), kMagic, 6) != 0) throw bad("wrong magic (expected \\x93NUMPY)");
    if (b.size() < 10) throw bad(fmt::format("truncated: {} bytes, shorter than the fixed header", b.size()));
    const unsigned major = static_cast<unsigned char>(b[6]);
    std::size_t hlen = 0, start = 0;
    if (major == 1) {
        hlen = static_cast<unsigned char>(b[8]) | (static_cast<std::size_t>(static_cast<unsigned char>(b[9])) << 8);
        start = 10;
    } else if (major == 2 || major == 3) {
        if (b.size() < 12) throw bad(fmt::format("truncated: {} bytes, shorter than the fixed header", b.size()));
        hlen = 0;
        for (int i = 0; i < 4; ++i) hlen |= static_cast<std::size_t>(static_cast<unsigned char>(b[8 + i])) << (8 * i);
        start = 12;
    } else {
        throw bad(fmt::format("unsupported format version {}", major));
    }
    if (hlen > kMaxHeader) throw bad(fmt::format("header length {} is absurd (at most {})", hlen, kMaxHeader));
    if (start + hlen > b.size())
        throw bad(fmt::format("truncated: the header length is {} but only {} bytes follow", hlen, b.size() - start));
    const NpyHeader h = HeaderParser(b.substr(start, hlen), where).parse();

    const NpyDescr descr = classify(h.descr, bad);
    if (float_only && descr.type != NpyType::float32 && descr.type != NpyType::float64)
        throw bad(fmt::format("dtype {} is not supported by from_npy, which reads float32 '<f4' and float64 '<f8' "
                              "(read {} arrays with array_from_npy or load_arrays)",
                              excerpt(h.descr), npy_type_name(descr.type)));
    if (h.fortran_order) {
        // A 0-d or 1-d array is laid out the same in either order; anything else would be transposed.
        std::size_t non_trivial = 0;
        for (std::size_t d : h.shape) non_trivial += d > 1;
        if (non_trivial > 1) throw bad("Fortran-ordered arrays are not supported (save a C-contiguous array)");
    }
    // The nonzero sizes must multiply to a sane size even when a zero size makes the array empty:
    // NumPy and PyTorch refuse such shapes too, and the array's strides are products of the sizes.
    std::uint64_t count = 1;
    bool empty = false;
    for (std::size_t d : h.shape) {
        if (d == 0) empty = true;
        else if (count > kMaxEntryBytes / d) count = kMaxEntryBytes + 1;  // saturate: too big either way
        else count *= d;
    }
    const std::uint64_t item = descr.item;
    if (count > kMaxEntryBytes / item)
        throw bad(fmt::format("shape {} is absurdly large (over {} bytes)", shape_str(h.shape), kMaxEntryBytes));
    if (empty) count = 0;
    const std::size_t data_start = start + hlen;
    const std::uint64_t have = b.size() - data_start, need = count * item;
    if (have < need)
        throw bad(fmt::format("truncated data: shape {} needs {} bytes but only {} follow the header",
                              shape_str(h.shape), need, have));
    if (have > need)
        throw bad(fmt::format("{} bytes follow the header but shape {} needs {} (trailing or corrupt data)", have,
                              shape_str(h.shape), need));
    const char* data = b.data() + data_start;
    switch (descr.type) {
        case NpyType::float32:
        case NpyType::float64: {
            Tensor t = zeros(h.shape, descr.type == NpyType::float64 ? f64 : f32);
            if (need) std::visit([&](auto& a) { std::memcpy(a.data(), data, need); }, t.mutable_array());
            return NpyArray(std::move(t));
        }
        case NpyType::int64: {
            auto a = xt::xarray<std::int64_t>::from_shape(h.shape);
            if (need) std::memcpy(a.data(), data, need);
            return NpyArray(std::move(a));
        }
        case NpyType::int32: {
            auto a = xt::xarray<std::int32_t>::from_shape(h.shape);
            if (need) std::memcpy(a.data(), data, need);
            return NpyArray(std::move(a));
        }
        case NpyType::boolean: {
            // Any byte but 0 and 1 is not a bool NumPy writes; copying it into a bool would be undefined.
            auto a = xt::xarray<bool>::from_shape(h.shape);
            for (std::uint64_t i = 0; i < count; ++i) {
                const auto v = static_cast<unsigned char>(data[i]);
                if (v > 1) throw bad(fmt::format("bool element {} is {}, not 0 or 1", i, v));
                a.data()[i] = v == 1;
            }
            return NpyArray(std::move(a));
        }
        case NpyType::unicode:
        case NpyType::bytes: {
            StringArray s{h.shape, {}, descr.type == NpyType::bytes};
            s.values.resize(static_cast<std::size_t>(count));
            for (std::uint64_t i = 0; i < count; ++i) {
                const char* p = data + i * item;
                std::string& v = s.values[static_cast<std::size_t>(i)];
                if (s.bytes) {
                    std::size_t n = static_cast<std::size_t>(item);
                    while (n > 0 && p[n - 1] == '\0') --n;  // NumPy's padding
                    v.assign(p, n);
                    continue;
                }
                std::size_t n = static_cast<std::size_t>(item / 4);
                while (n > 0 && read_u32(p + 4 * (n - 1)) == 0) --n;
                v.reserve(n);
                for (std::size_t k = 0; k < n; ++k) {
                    const std::uint32_t c = read_u32(p + 4 * k);
                    if (c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
                        throw bad(fmt::format("string element {} holds {:#x} at character {}, which is not a "
                                              "Unicode code point",
                                              i, c, k));
                    append_utf8(v, static_cast<char32_t>(c));
                }
            }
            return NpyArray(std::move(s));
        }
    }
    throw bad("unreachable dtype");
}

// Writes bytes to a new file at p and flushes them to the disk; any failure is a FormatError (a
// save that reports success must be on the disk, so a failed write or fsync is not ignored).
void write_durably(const std::string& p, const std::string& bytes, const std::string& path) {
    const int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) throw FormatError(fmt::format("save_tensors: cannot create {}: {}", p, std::strerror(errno)));
    std::size_t done = 0;
    while (done < bytes.size()) {
        const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            const std::string why = std::strerror(errno);
            ::close(fd);
            std::remove(p.c_str());
            throw FormatError(fmt::format("save_tensors: {}: writing {} failed: {}", path, p, why));
        }
        done += static_cast<std::size_t>(n);
    }
    if (::fsync(fd) != 0 || ::close(fd) != 0) {
        const std::string why = std::strerror(errno);
        std::remove(p.c_str());
        throw FormatError(fmt::format("save_tensors: {}: flushing {} to disk failed: {}", path, p, why));
    }
}

// After the rename: flush the directory entry. Some file systems cannot fsync a directory
// (EINVAL); only a real I/O error is reported.
void fsync_directory(const std::string& dir, const std::string& path) {
    const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return;
    const int r = ::fsync(fd);
    const int e = errno;
    ::close(fd);
    if (r != 0 && e == EIO)
        throw FormatError(fmt::format("save_tensors: {}: flushing its directory to disk failed: {}", path,
                                      std::strerror(e)));
}

// The temporary file of a save to `target` is "<prefix><pid>-<n>" in the target's folder. The
// prefix is "<name>.tmp-", unless that would make the temporary's name longer than the file
// system allows (a legal name near the limit must still save): then the name is cut, at a UTF-8
// character boundary, and a hash of the whole name keeps targets that share the cut part apart.
std::string temporary_prefix(const std::filesystem::path& target) {
    const std::string name = target.filename().string();
    const std::filesystem::path dir = target.parent_path().empty() ? std::filesystem::path(".") : target.parent_path();
    long name_max = ::pathconf(dir.c_str(), _PC_NAME_MAX);
    if (name_max <= 0) name_max = 255;
    constexpr std::size_t kSuffix = 5 + 10 + 1 + 10;  // ".tmp-" "<pid>" "-" "<n>", at their longest
    if (name.size() + kSuffix <= static_cast<std::size_t>(name_max)) return name + ".tmp-";
    std::uint64_t hash = 1469598103934665603ull;  // FNV-1a
    for (unsigned char c : name) hash = (hash ^ c) * 1099511628211ull;
    const std::string tail = fmt::format("~{:016x}.tmp-", hash);
    std::size_t keep = static_cast<std::size_t>(name_max) > kSuffix + tail.size() - 5
                           ? static_cast<std::size_t>(name_max) - kSuffix - (tail.size() - 5)
                           : 0;
    keep = std::min(keep, name.size());
    while (keep > 0 && (static_cast<unsigned char>(name[keep]) & 0xC0) == 0x80) --keep;  // not inside a character
    return name.substr(0, keep) + tail;
}

// A save killed between creating its temporary file and renaming it leaves "<prefix><pid>-<n>"
// behind. The next save to the same path removes those of processes that no longer exist (a live
// process may be saving to the same path right now).
void remove_stale_temporaries(const std::filesystem::path& target) {
    namespace fs = std::filesystem;
    const fs::path dir = target.parent_path().empty() ? fs::path(".") : target.parent_path();
    const std::string prefix = temporary_prefix(target);
    std::error_code ec;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
        const std::string name = it->path().filename().string();
        if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) continue;
        const std::string rest = name.substr(prefix.size());  // "<pid>-<n>"
        const std::size_t dash = rest.find('-');
        if (dash == 0 || dash == std::string::npos) continue;
        if (!std::all_of(rest.begin(), rest.end(), [](char c) { return c == '-' || (c >= '0' && c <= '9'); }))
            continue;
        const long pid = std::strtol(rest.substr(0, dash).c_str(), nullptr, 10);
        if (pid <= 0 || pid == ::getpid()) continue;
        if (::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) {
            std::error_code rm;
            fs::remove(it->path(), rm);
        }
    }
}

// The file a save to `path` must replace. A symbolic link is followed (link by link, relative
// links against the folder of the link that holds them), so saving through a link updates what
// it points to and the link stays a link; a link to nothing yet makes its target. Renaming the
// new file over the link itself would silently replace the link with a plain file.
std::string save_target(const std::string& path) {
    namespace fs = std::filesystem;
    fs::path p(path);
    for (int hop = 0; hop < 40; ++hop) {
        std::error_code ec;
        if (!fs::is_symlink(fs::symlink_status(p, ec)) || ec) return p.string();
        const fs::path next = fs::read_symlink(p, ec);
        if (ec)
            throw FormatError(fmt::format("save_tensors: {}: cannot read the symbolic link {}: {}", path, p.string(),
                                          ec.message()));
        p = next.is_absolute() ? next : p.parent_path() / next;
    }
    throw FormatError(fmt::format("save_tensors: {}: more than 40 symbolic links to follow (a loop?)", path));
}

// The archive built in memory: a kill can then leave only our own temporary file behind (libzip
// writing a file would add a temporary of its own), and the bytes reach the disk in one checked
// write. numpy.savez() of nothing is the 22-byte end-of-directory record alone, which libzip does
// not produce for an archive without entries, so that case is written directly.
std::string zip_in_memory(const std::vector<std::pair<std::string, std::string>>& blobs,
                          const std::string& path) {
    if (blobs.empty()) return std::string("PK\x05\x06", 4) + std::string(18, '\0');
    zip_error_t error;
    zip_error_init(&error);
    zip_source_t* mem = zip_source_buffer_create(nullptr, 0, 0, &error);
    if (!mem) throw FormatError(fmt::format("save_tensors: {}: {}", path, zip_error_strerror(&error)));
    std::unique_ptr<zip_source_t, decltype(&zip_source_free)> mem_guard(mem, &zip_source_free);
    zip_t* za = zip_open_from_source(mem, ZIP_TRUNCATE, &error);
    if (!za) throw FormatError(fmt::format("save_tensors: {}: {}", path, zip_error_strerror(&error)));
    zip_source_keep(mem);  // the archive's close must not free the buffer we read back
    auto fail = [&](const std::string& why) {
        zip_discard(za);
        return FormatError(fmt::format("save_tensors: {}: {}", path, why));
    };
    for (const auto& [name, blob] : blobs) {  // `blobs` outlives zip_close, which reads them
        zip_source_t* src = zip_source_buffer(za, blob.data(), blob.size(), 0);
        if (!src) throw fail(fmt::format("cannot add '{}': {}", name, zip_strerror(za)));
        const zip_int64_t idx = zip_file_add(za, (name + ".npy").c_str(), src, ZIP_FL_ENC_UTF_8);
        if (idx < 0) {
            zip_source_free(src);
            throw fail(fmt::format("cannot add '{}': {}", name, zip_strerror(za)));
        }
        zip_set_file_compression(za, static_cast<zip_uint64_t>(idx), ZIP_CM_STORE, 0);
    }
    if (zip_close(za) != 0) throw fail(fmt::format("building the archive failed: {}", zip_strerror(za)));
    std::string bytes;
    zip_stat_t st;
    zip_stat_init(&st);
    if (zip_source_stat(mem, &st) != 0 || !(st.valid & ZIP_STAT_SIZE) || zip_source_open(mem) != 0)
        throw FormatError(fmt::format("save_tensors: {}: cannot read back the archive built in memory", path));
    bytes.resize(st.size);
    const zip_int64_t got = zip_source_read(mem, bytes.data(), st.size);
    zip_source_close(mem);
    if (got < 0 || static_cast<zip_uint64_t>(got) != st.size)
        throw FormatError(fmt::format("save_tensors: {}: cannot read back the archive built in memory", path));
    return bytes;
}

// Reads every entry of an open archive. `path` names it in messages; `archive_bytes` is its size,
// which no entry's compressed data can exceed.
NamedArrays read_archive(zip_t* za, const std::string& path, std::uint64_t archive_bytes, const char* op) {
    NamedArrays out;
    std::set<std::string> names;
    const zip_int64_t n = zip_get_num_entries(za, 0);
    for (zip_int64_t i = 0; i < n; ++i) {
        const auto idx = static_cast<zip_uint64_t>(i);
        zip_stat_t st;
        zip_stat_init(&st);
        const zip_uint64_t need = ZIP_STAT_NAME | ZIP_STAT_SIZE | ZIP_STAT_COMP_SIZE | ZIP_STAT_COMP_METHOD;
        if (zip_stat_index(za, idx, 0, &st) != 0 || (st.valid & need) != need)
            throw FormatError(fmt::format("{}: {}: entry {} is unreadable: {}", op, path, i, zip_strerror(za)));
        std::string name = st.name;
        const std::string where = fmt::format("{}: entry {}", path, excerpt(name, 200));
        if (name.size() < 5 || name.compare(name.size() - 4, 4, ".npy") != 0)
            throw FormatError(fmt::format("{}: {} is not a .npy array (an .npz holds only name.npy entries)", op,
                                          where));
        if (!names.insert(name).second)
            throw FormatError(fmt::format("{}: {} appears twice in the archive", op, where));
        // The sizes in the zip directory are checked against what the archive can really hold, so
        // an entry that lies about its size is refused before any memory is set aside for it.
        if (st.comp_method != ZIP_CM_STORE && st.comp_method != ZIP_CM_DEFLATE)
            throw FormatError(fmt::format("{}: {} uses compression method {}; only stored and deflated "
                                          "entries are supported (what numpy.savez and savez_compressed write)", op,
                                          where, st.comp_method));
        if (st.comp_size > archive_bytes)
            throw FormatError(fmt::format("{}: {} claims {} compressed bytes but the archive has only {}", op,
                                          where, st.comp_size, archive_bytes));
        const bool stored = st.comp_method == ZIP_CM_STORE;
        if ((stored && st.size != st.comp_size) || (!stored && st.size / kMaxDeflateRatio > st.comp_size + 1))
            throw FormatError(fmt::format("{}: {} claims {} bytes, which its {} {} bytes cannot hold", op,
                                          where, st.size, stored ? "stored" : "deflated", st.comp_size));
        if (st.size > kMaxEntryBytes)
            throw FormatError(fmt::format("{}: {} claims {} bytes (more than {})", op, where, st.size,
                                          kMaxEntryBytes));
        zip_file_t* f = zip_fopen_index(za, idx, 0);
        if (!f) throw FormatError(fmt::format("{}: {}: {}", op, where, zip_strerror(za)));
        std::unique_ptr<zip_file_t, decltype(&zip_fclose)> fguard(f, &zip_fclose);
        // Grow the buffer as data really arrives (doubling), so memory follows the bytes present.
        std::string buf;
        std::uint64_t have = 0;
        auto read_failed = [&]() {
            return FormatError(fmt::format("{}: {}: read failed after {} of {} bytes (truncated or "
                                           "corrupt): {}", op,
                                           where, have, st.size, zip_file_strerror(f)));
        };
        while (have < st.size) {
            const std::uint64_t step = std::min<std::uint64_t>(st.size - have, std::max<std::uint64_t>(have, 1 << 16));
            buf.resize(static_cast<std::size_t>(have + step));
            const zip_int64_t got = zip_fread(f, buf.data() + have, step);
            if (got < 0) throw read_failed();
            if (got == 0) break;
            have += static_cast<std::uint64_t>(got);
        }
        if (have != st.size)
            throw FormatError(fmt::format("{}: {}: the data ends after {} of the {} bytes its size claims", op,
                                          where, have, st.size));
        // One more read reaches the end of the entry, where libzip checks the CRC.
        char extra = 0;
        const zip_int64_t more = zip_fread(f, &extra, 1);
        if (more < 0) throw read_failed();
        if (more > 0) throw FormatError(fmt::format("{}: {} holds more data than its size ({} bytes) "
                                                    "claims", op, where, st.size));
        buf.resize(static_cast<std::size_t>(have));
        name.resize(name.size() - 4);
        out.emplace_back(name, parse_npy(buf, fmt::format("{}: {}", op, where), false));
    }
    return out;
}

// zip_open and zip_open_from_source fail on two entries with one name (ZIP_CHECKCONS); the
// message should say which name, so reopen leniently only to find it.
std::string duplicate_entry(zip_source_t* src) {
    zip_error_t e;
    zip_error_init(&e);
    zip_source_keep(src);
    zip_t* za = zip_open_from_source(src, ZIP_RDONLY, &e);
    zip_error_fini(&e);
    if (!za) {
        zip_source_free(src);
        return {};
    }
    std::set<std::string> seen;
    std::string dup;
    const zip_int64_t n = zip_get_num_entries(za, 0);
    for (zip_int64_t i = 0; i < n && dup.empty(); ++i)
        if (const char* name = zip_get_name(za, static_cast<zip_uint64_t>(i), 0); name && !seen.insert(name).second)
            dup = name;
    zip_discard(za);
    return dup;
}

// Opens `src` (which the archive then owns; freed here on failure) and reads every entry.
NamedArrays load_from_source(zip_source_t* src, const std::string& path, std::uint64_t archive_bytes, const char* op) {
    zip_error_t e;
    zip_error_init(&e);
    zip_t* za = zip_open_from_source(src, ZIP_RDONLY | ZIP_CHECKCONS, &e);
    if (!za) {
        const int code = zip_error_code_zip(&e);
        const std::string why = zip_error_strerror(&e);
        zip_error_fini(&e);
        std::string dup = code == ZIP_ER_EXISTS ? duplicate_entry(src) : std::string();
        zip_source_free(src);
        if (!dup.empty())
            throw FormatError(fmt::format("{}: {}: entry {} appears twice in the archive", op, path,
                                          excerpt(dup, 200)));
        throw FormatError(fmt::format("{}: cannot open {} as an .npz (zip) archive: {}", op, path, why));
    }
    zip_error_fini(&e);
    std::unique_ptr<zip_t, decltype(&zip_discard)> guard(za, &zip_discard);
    return read_archive(za, path, archive_bytes, op);
}

// Writes named .npy blobs as an .npz at `path`, atomically: the whole archive is built in memory,
// written to a temporary file in the same folder and flushed, then renamed over `path`.
void write_npz(const std::vector<std::pair<std::string, std::string>>& blobs, const std::string& path) {
    static std::atomic<unsigned> counter{0};
    const std::string bytes = zip_in_memory(blobs, path);
    const std::string final_path = save_target(path);
    const std::filesystem::path target(final_path);
    remove_stale_temporaries(target);
    const std::string tmp =
        (target.parent_path() / fmt::format("{}{}-{}", temporary_prefix(target), ::getpid(), counter++)).string();
    write_durably(tmp, bytes, path);
    if (std::rename(tmp.c_str(), final_path.c_str()) != 0) {
        const std::string why = std::strerror(errno);
        std::remove(tmp.c_str());
        throw FormatError(fmt::format("save_tensors: cannot move the new file over {}: {}", path, why));
    }
    const auto dir = target.parent_path();
    fsync_directory(dir.empty() ? std::string(".") : dir.string(), path);
}

// The names of a save: none empty, none twice, and each one the format can store and give back
// unchanged (a save that succeeds must load): no NUL byte, valid UTF-8 (the archive marks its
// names as UTF-8), and at most 65531 bytes (a zip name is at most 65535 bytes, with ".npy").
template <class Entries>
void check_names(const Entries& entries, const char* op, const std::string& path) {
    constexpr std::size_t kMaxName = 65535 - 4;
    std::set<std::string> seen;
    for (const auto& [name, a] : entries) {
        if (name.empty()) throw ValueError(fmt::format("{}: {}: an entry has an empty name", op, path));
        if (const auto nul = name.find('\0'); nul != std::string::npos)
            throw ValueError(fmt::format("{}: {}: entry name {} holds a NUL byte at offset {}; the archive cannot "
                                         "store it",
                                         op, path, excerpt(name), nul));
        if (name.size() > kMaxName)
            throw ValueError(fmt::format("{}: {}: entry name {} is {} bytes; the archive allows at most {}", op,
                                         path, excerpt(name), name.size(), kMaxName));
        try {
            utf8_validate(name, op);
        } catch (const ValueError& e) {
            throw ValueError(fmt::format("{}: {}: entry name {} is not valid UTF-8: {}", op, path, excerpt(name),
                                         e.what()));
        }
        if (!seen.insert(name).second) throw ValueError(fmt::format("{}: {}: name '{}' appears twice", op, path, name));
    }
}

NamedArrays read_file(const std::string& path, const char* op) {
    std::error_code ec;
    if (const auto st = std::filesystem::status(path, ec);
        !ec && st.type() != std::filesystem::file_type::regular && st.type() != std::filesystem::file_type::not_found)
        throw FormatError(fmt::format("{}: {} is not a regular file (a {})", op, path,
                                      st.type() == std::filesystem::file_type::directory ? "directory"
                                      : st.type() == std::filesystem::file_type::character ? "character device"
                                      : st.type() == std::filesystem::file_type::block     ? "block device"
                                      : st.type() == std::filesystem::file_type::fifo      ? "pipe (FIFO)"
                                      : st.type() == std::filesystem::file_type::socket    ? "socket"
                                                                                           : "special file"));
    const auto bytes = std::filesystem::file_size(path, ec);
    if (ec) throw FormatError(fmt::format("{}: cannot open {}: {}", op, path, ec.message()));
    if (bytes == 0) throw FormatError(fmt::format("{}: {} is empty (0 bytes)", op, path));
    zip_error_t e;
    zip_error_init(&e);
    zip_source_t* src = zip_source_file_create(path.c_str(), 0, -1, &e);
    if (!src) {
        const std::string why = zip_error_strerror(&e);
        zip_error_fini(&e);
        throw FormatError(fmt::format("{}: cannot open {}: {}", op, path, why));
    }
    zip_error_fini(&e);
    return load_from_source(src, path, bytes, op);
}

NamedArrays read_memory(std::string_view bytes, const std::string& name, const char* op) {
    // libzip takes zero bytes for an empty archive; numpy and a truncated download both disagree.
    if (bytes.empty()) throw FormatError(fmt::format("{}: {} is empty (0 bytes)", op, name));
    zip_error_t e;
    zip_error_init(&e);
    zip_source_t* src = zip_source_buffer_create(bytes.data(), bytes.size(), 0, &e);
    if (!src) {
        const std::string why = zip_error_strerror(&e);
        zip_error_fini(&e);
        throw FormatError(fmt::format("{}: {}: {}", op, name, why));
    }
    zip_error_fini(&e);
    return load_from_source(src, name, bytes.size(), op);
}

NamedTensors float_entries(const NamedArrays& arrays) {
    NamedTensors out;
    for (const auto& [name, a] : arrays)
        if (a.is_float()) out.emplace_back(name, a.tensor());
    return out;
}

}  // namespace

// ---- NpyArray -----------------------------------------------------------------------------------

const char* npy_type_name(NpyType t) {
    switch (t) {
        case NpyType::float32: return "float32";
        case NpyType::float64: return "float64";
        case NpyType::int64: return "int64";
        case NpyType::int32: return "int32";
        case NpyType::boolean: return "bool";
        case NpyType::unicode: return "str";
        case NpyType::bytes: return "bytes";
    }
    return "?";
}

NpyArray::NpyArray(Tensor t) : v_(std::move(t)) {}
NpyArray::NpyArray(xt::xarray<std::int64_t> a) : v_(std::move(a)) {}
NpyArray::NpyArray(xt::xarray<std::int32_t> a) : v_(std::move(a)) {}
NpyArray::NpyArray(xt::xarray<bool> a) : v_(std::move(a)) {}
NpyArray::NpyArray(const LongTensor& a) : v_(a.array()) {}
NpyArray::NpyArray(const BoolTensor& a) : v_(a.array()) {}
NpyArray::NpyArray(StringArray s) {
    if (s.values.size() != numel_of(s.shape))
        throw ValueError(fmt::format("StringArray: {} value(s) for shape {}, which has {} element(s)", s.values.size(),
                                     shape_str(s.shape), numel_of(s.shape)));
    v_ = std::move(s);
}
NpyArray::NpyArray(std::string text) : v_(StringArray{{}, {std::move(text)}, false}) {}
NpyArray::NpyArray(const char* text) : NpyArray(std::string(text)) {}

NpyType NpyArray::type() const {
    switch (v_.index()) {
        case 0: {
            const Tensor& t = std::get<0>(v_);
            return t.defined() && t.dtype() == f64 ? NpyType::float64 : NpyType::float32;
        }
        case 1: return NpyType::int64;
        case 2: return NpyType::int32;
        case 3: return NpyType::boolean;
        default: return std::get<4>(v_).bytes ? NpyType::bytes : NpyType::unicode;
    }
}

Shape NpyArray::shape() const {
    return std::visit(
        [](const auto& a) -> Shape {
            using A = std::decay_t<decltype(a)>;
            if constexpr (std::is_same_v<A, Tensor>) return a.defined() ? a.shape() : Shape{};
            else if constexpr (std::is_same_v<A, StringArray>) return a.shape;
            else return Shape(a.shape().begin(), a.shape().end());
        },
        v_);
}

std::string NpyArray::describe() const {
    if (is_float() && !std::get<0>(v_).defined()) return "an undefined tensor";
    return fmt::format("{} {}", npy_type_name(type()), shape_str(shape()));
}

const Tensor& NpyArray::tensor(const std::string& what) const {
    if (!is_float()) throw DTypeError(fmt::format("{} is {}, not a float32 or float64 array", what, describe()));
    return std::get<0>(v_);
}

xt::xarray<std::int64_t> NpyArray::int64(const std::string& what) const {
    auto widen = [](const auto& a) {
        auto out = xt::xarray<std::int64_t>::from_shape(a.shape());
        for (std::size_t i = 0; i < a.size(); ++i) out.data()[i] = static_cast<std::int64_t>(a.data()[i]);
        return out;
    };
    switch (v_.index()) {
        case 1: return std::get<1>(v_);
        case 2: return widen(std::get<2>(v_));
        case 3: return widen(std::get<3>(v_));
        default:
            throw DTypeError(fmt::format("{} is {}, not an integer array (int64, int32 or bool)", what, describe()));
    }
}

xt::xarray<bool> NpyArray::bools(const std::string& what) const {
    if (v_.index() != 3) throw DTypeError(fmt::format("{} is {}, not a bool array", what, describe()));
    return std::get<3>(v_);
}

const StringArray& NpyArray::strings(const std::string& what) const {
    if (v_.index() != 4) throw DTypeError(fmt::format("{} is {}, not a string array", what, describe()));
    return std::get<4>(v_);
}

const std::string& NpyArray::string(const std::string& what) const {
    const StringArray& s = strings(what);
    if (s.values.size() != 1)
        throw ShapeError(fmt::format("{} is {}, not a single string", what, describe()));
    return s.values[0];
}

// ---- files --------------------------------------------------------------------------------------

void save_tensors(const NamedTensors& tensors, const std::string& path) {
    check_names(tensors, "save_tensors", path);
    std::vector<std::pair<std::string, std::string>> blobs;
    for (const auto& [name, t] : tensors) {
        if (!t.defined()) throw ValueError(fmt::format("save_tensors: {}: '{}' is undefined", path, name));
        blobs.emplace_back(name, npy_bytes(t, name));
    }
    write_npz(blobs, path);
}

void save_arrays(const NamedArrays& arrays, const std::string& path) {
    check_names(arrays, "save_arrays", path);
    std::vector<std::pair<std::string, std::string>> blobs;
    for (const auto& [name, a] : arrays)
        blobs.emplace_back(name, npy_bytes(a, fmt::format("save_arrays: {}: entry '{}'", path, name)));
    write_npz(blobs, path);
}

std::string to_npy(const NpyArray& a) {
    if (a.is_float() && !a.tensor().defined()) throw ValueError("to_npy: the tensor is undefined");
    return npy_bytes(a, "to_npy");
}

Tensor from_npy(std::string_view bytes, const std::string& name) { return parse_npy(bytes, name, true).tensor(); }
NpyArray array_from_npy(std::string_view bytes, const std::string& name) { return parse_npy(bytes, name, false); }

NamedArrays load_arrays(const std::string& path) { return read_file(path, "load_arrays"); }
NamedArrays load_arrays_from_memory(std::string_view bytes, const std::string& name) {
    return read_memory(bytes, name, "load_arrays");
}
NamedTensors load_tensors(const std::string& path) { return float_entries(read_file(path, "load_tensors")); }
NamedTensors load_tensors_from_memory(std::string_view bytes, const std::string& name) {
    return float_entries(read_memory(bytes, name, "load_tensors"));
}

// ---- NpzArchive ---------------------------------------------------------------------------------

NpzArchive NpzArchive::read(const std::string& path) { return NpzArchive(read_file(path, "NpzArchive"), path); }
NpzArchive NpzArchive::from_memory(std::string_view bytes, const std::string& name) {
    return NpzArchive(read_memory(bytes, name, "NpzArchive"), name);
}

NpzArchive::NpzArchive(NamedArrays entries, std::string name) : entries_(std::move(entries)), name_(std::move(name)) {
    for (std::size_t i = 0; i < entries_.size(); ++i)
        if (!index_.emplace(entries_[i].first, i).second)
            throw ValueError(fmt::format("NpzArchive {}: entry '{}' appears twice", name_, entries_[i].first));
}

std::string NpzArchive::where(const std::string& key) const { return fmt::format("{}: entry '{}'", name_, key); }

const NpyArray& NpzArchive::at(const std::string& key) const {
    auto it = index_.find(key);
    if (it == index_.end()) {
        std::vector<std::string> names;
        for (const auto& [n, a] : entries_) names.push_back(n);
        throw ValueError(fmt::format("{}: no entry '{}'; the entries are {}", name_, key, quoted_list(names, 20)));
    }
    return entries_[it->second].second;
}
const Tensor& NpzArchive::tensor(const std::string& key) const { return at(key).tensor(where(key)); }
xt::xarray<std::int64_t> NpzArchive::int64(const std::string& key) const { return at(key).int64(where(key)); }
xt::xarray<bool> NpzArchive::bools(const std::string& key) const { return at(key).bools(where(key)); }
const std::string& NpzArchive::string(const std::string& key) const { return at(key).string(where(key)); }
const StringArray& NpzArchive::strings(const std::string& key) const { return at(key).strings(where(key)); }
NamedTensors NpzArchive::tensors() const { return float_entries(entries_); }

// ---- modules ------------------------------------------------------------------------------------

std::string to_string(const LoadReport& r) {
    return fmt::format("loaded {} parameter(s); missing: {}; unexpected: {}", r.loaded.size(),
                       quoted_list(r.missing_keys), quoted_list(r.unexpected_keys));
}

NamedTensors state_dict(const Module& module) {
    NamedTensors out;
    for (auto& [name, p] : module.named_parameters()) out.emplace_back(name, p.detach());
    return out;
}

LoadReport load_state_dict_from_arrays(Module& module, const NamedArrays& state, const LoadOptions& options) {
    const std::string& prefix = options.prefix;
    auto error = [&](const std::string& why) {
        return ValueError(fmt::format("load_state_dict into {}: {}", module.type_name(), why));
    };
    // The entries under the prefix, by name with the prefix removed, in the state's order.
    std::map<std::string, const NpyArray*> given;
    std::vector<std::string> order;
    std::vector<std::string> problems;
    bool any_under_prefix = false;
    for (const auto& [full, a] : state) {
        if (full.rfind(prefix, 0) != 0) continue;
        any_under_prefix = true;
        const std::string key = full.substr(prefix.size());
        if (given.emplace(key, &a).second) order.push_back(key);
        else problems.push_back(fmt::format("'{}' appears twice", full));
    }
    if (!any_under_prefix && !prefix.empty()) {
        // A mistyped prefix would otherwise load nothing (or, strict, report every parameter missing).
        std::vector<std::string> heads;
        for (const auto& [full, a] : state) {
            const std::string head = full.substr(0, full.find('.') == std::string::npos ? full.size() : full.find('.') + 1);
            if (std::find(heads.begin(), heads.end(), head) == heads.end()) heads.push_back(head);
        }
        throw error(fmt::format("no entry starts with the prefix '{}'; the entries start with {}", prefix,
                                quoted_list(heads)));
    }

    LoadReport report;
    const NamedTensors params = module.named_parameters();
    std::vector<std::pair<Tensor, const Tensor*>> copies;
    for (const auto& [name, p] : params) {
        const std::string full = prefix + name;
        auto it = given.find(name);
        if (it == given.end()) {
            report.missing_keys.push_back(name);
            if (options.strict)
                problems.push_back(fmt::format("missing '{}' ({} {}){}", name, shape_str(p.shape()),
                                               dtype_name(p.dtype()),
                                               prefix.empty() ? "" : fmt::format(": no entry '{}'", full)));
            continue;
        }
        const NpyArray& a = *it->second;
        given.erase(it);
        if (!a.is_float() || !a.tensor().defined()) {
            problems.push_back(fmt::format("'{}' is {}, which cannot be a parameter (the model's is {} {})", full,
                                           a.describe(), dtype_name(p.dtype()), shape_str(p.shape())));
            continue;
        }
        const Tensor& t = a.tensor();
        if (t.shape() != p.shape())
            problems.push_back(fmt::format("'{}' has shape {} but the model's is {}", full, shape_str(t.shape()),
                                           shape_str(p.shape())));
        else if (t.dtype() != p.dtype())
            problems.push_back(fmt::format("'{}' is {} but the model's is {} (convert the model with .to() first)", full,
                                           dtype_name(t.dtype()), dtype_name(p.dtype())));
        else {
            report.loaded.push_back(name);
            copies.emplace_back(p, &t);
        }
    }
    for (const std::string& key : order) {
        auto it = given.find(key);
        if (it == given.end()) continue;
        report.unexpected_keys.push_back(prefix + key);
        if (options.strict) problems.push_back(fmt::format("unexpected '{}' ({})", prefix + key, it->second->describe()));
    }
    if (!problems.empty())
        throw error(fmt::format("{} problem(s): {}", problems.size(), fmt::join(problems, "; ")));
    if (report.loaded.empty() && !params.empty())
        throw error(fmt::format("nothing to load: none of the model's {} parameter(s) ({}) has an entry{} (the "
                                "entries: {})",
                                params.size(), quoted_list(report.missing_keys, 4),
                                prefix.empty() ? "" : fmt::format(" under '{}'", prefix),
                                quoted_list(report.unexpected_keys, 4)));
    for (auto& [p, t] : copies) {
        Tensor q = p;
        q.mutable_array() = t->array();
    }
    return report;
}

LoadReport load_state_dict(Module& module, const NamedTensors& state, const LoadOptions& options) {
    NamedArrays arrays;
    arrays.reserve(state.size());
    for (const auto& [name, t] : state) arrays.emplace_back(name, t);
    return load_state_dict_from_arrays(module, arrays, options);
}

void save(const Module& module, const std::string& path) { save_tensors(state_dict(module), path); }
LoadReport load(Module& module, const std::string& path, const LoadOptions& options) {
    const NamedArrays entries = read_file(path, "load");
    try {
        return load_state_dict_from_arrays(module, entries, options);
    } catch (const ValueError& e) {
        throw ValueError(fmt::format("load {}: {}", path, e.what()));
    }
}

namespace {
const std::string kOptimizerPrefix = "optimizer.";
}  // namespace

void load_state_dicts(Module& module, Optimizer& optimizer, const NamedTensors& model_state,
                      const NamedTensors& optimizer_state) {
    // Step counters become integers inside the optimizer; a corrupt file could hold any double there.
    for (const auto& [name, t] : optimizer_state) {
        if (name != "step" && !(name.size() > 5 && name.compare(name.size() - 5, 5, ".step") == 0)) continue;
        if (!t.defined() || t.numel() != 1) continue;  // the optimizer reports the wrong shape itself
        const double v = t.item();
        if (!(v >= 0.0) || v != std::floor(v) || v >= 9007199254740992.0)  // 2^53
            throw ValueError(fmt::format("load_state_dicts: optimizer entry '{}' is {}, not a step count", name, v));
    }
    const NamedTensors current = state_dict(module);
    load_state_dict(module, model_state);  // checks everything before changing anything
    try {
        optimizer.load_state_dict(optimizer_state);
    } catch (...) {
        load_state_dict(module, current);  // put the model back as it was
        throw;
    }
}

void save(const Module& module, const Optimizer& optimizer, const std::string& path) {
    NamedTensors all = state_dict(module);
    for (const auto& [name, t] : all)
        if (name.rfind(kOptimizerPrefix, 0) == 0)
            throw ValueError(fmt::format("save {}: parameter '{}' starts with '{}', which names the optimizer's state",
                                         path, name, kOptimizerPrefix));
    for (auto& [name, t] : optimizer.state_dict()) all.emplace_back(kOptimizerPrefix + name, t);
    save_tensors(all, path);
}

void load(Module& module, Optimizer& optimizer, const std::string& path) {
    NamedArrays model_arrays;
    NamedTensors model, opt;
    bool non_float_model_entry = false;
    for (auto& [name, a] : read_file(path, "load")) {
        if (name.rfind(kOptimizerPrefix, 0) == 0) {
            if (!a.is_float())
                throw ValueError(fmt::format("load {}: optimizer entry '{}' is {}, not a float array", path, name,
                                             a.describe()));
            opt.emplace_back(name.substr(kOptimizerPrefix.size()), a.tensor());
        } else {
            non_float_model_entry = non_float_model_entry || !a.is_float();
            if (a.is_float()) model.emplace_back(name, a.tensor());
            model_arrays.emplace_back(name, a);
        }
    }
    try {
        // A non-float entry never fits a parameter: the strict check lists it with every other problem.
        if (non_float_model_entry) load_state_dict_from_arrays(module, model_arrays);
        load_state_dicts(module, optimizer, model, opt);
    } catch (const ValueError& e) {
        throw ValueError(fmt::format("load {}: {}", path, e.what()));
    }
}

}  // namespace tapegrad::nn
