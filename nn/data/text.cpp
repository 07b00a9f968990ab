// tapegrad::nn: character-level text. A strict UTF-8 decoder (the one place bytes become code
// points, so every error names the same offset and line), the code-point vocabulary, and the
// id-sequence cutting used to feed truncated BPTT.
#include "text.hpp"

#include <algorithm>
#include <cerrno>
#include <limits>
#include <new>
#include <string_view>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <optional>

#include <fmt/format.h>

#include "../io/serialize.hpp"

namespace tapegrad::nn {

namespace {

constexpr char32_t kReplacement = 0xFFFD;

bool valid_code_point(char32_t c) { return c <= 0x10FFFF && !(c >= 0xD800 && c <= 0xDFFF); }

struct Utf8Error {
    std::size_t offset;  // of the first byte of the bad sequence
    std::size_t line;    // 1-based
    std::string reason;
};

std::size_t line_of(std::string_view s, std::size_t offset) {
    return 1 + static_cast<std::size_t>(std::count(s.begin(), s.begin() + static_cast<long>(offset), '\n'));
}

// Decodes all of `s`; on the first bad sequence returns where and why. offsets[i] is the byte
// offset of code point i, kept so later errors (an unknown character) can say where it was.
// With cps null it only validates, so checking a large file costs no memory beyond the file.
std::optional<Utf8Error> decode_utf8(std::string_view s, std::vector<char32_t>* cps,
                                     std::vector<std::size_t>* offsets) {
    const auto* b = reinterpret_cast<const unsigned char*>(s.data());
    const std::size_t n = s.size();
    std::size_t i = 0;
    auto fail = [&](std::string reason) { return Utf8Error{i, line_of(s, i), std::move(reason)}; };
    while (i < n) {
        const unsigned char c0 = b[i];
        std::size_t len = 0;
        char32_t cp = 0;
        unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
        if (c0 < 0x80) {
            len = 1;
            cp = c0;
        } else if (c0 >= 0x80 && c0 <= 0xBF) {
            return fail(fmt::format("byte 0x{:02X} is a continuation byte with no lead byte", c0));
        } else if (c0 == 0xC0 || c0 == 0xC1) {
            return fail(fmt::format("byte 0x{:02X} starts an overlong encoding", c0));
        } else if (c0 <= 0xDF) {
            len = 2;
            cp = c0 & 0x1F;
        } else if (c0 <= 0xEF) {
            len = 3;
            cp = c0 & 0x0F;
            if (c0 == 0xE0) lo = 0xA0;  // below: overlong
            if (c0 == 0xED) hi = 0x9F;  // above: a UTF-16 surrogate
        } else if (c0 <= 0xF4) {
            len = 4;
            cp = c0 & 0x07;
            if (c0 == 0xF0) lo = 0x90;  // below: overlong
            if (c0 == 0xF4) hi = 0x8F;  // above: beyond U+10FFFF
        } else {
            return fail(fmt::format("byte 0x{:02X} never occurs in UTF-8", c0));
        }
        if (i + len > n)
            return fail(fmt::format("byte 0x{:02X} starts a {}-byte sequence cut short by the end of the text", c0,
                                    len));
        for (std::size_t k = 1; k < len; ++k) {
            const unsigned char ck = b[i + k];
            const unsigned char klo = k == 1 ? lo : 0x80, khi = k == 1 ? hi : 0xBF;
            if (ck < klo || ck > khi) {
                if (ck >= 0x80 && ck <= 0xBF)  // a continuation byte, but not allowed after this lead
                    return fail(fmt::format("bytes 0x{:02X} 0x{:02X} form an overlong encoding, a surrogate or a "
                                            "code point above U+10FFFF",
                                            c0, ck));
                return fail(fmt::format("byte 0x{:02X} starts a {}-byte sequence but byte {} of it is 0x{:02X}, "
                                        "not a continuation byte",
                                        c0, len, k + 1, ck));
            }
            cp = (cp << 6) | (ck & 0x3F);
        }
        if (cps) cps->push_back(cp);
        if (offsets) offsets->push_back(i);
        i += len;
    }
    return std::nullopt;
}

std::string utf8_of(char32_t c) {
    std::string out;
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
    return out;
}

std::string code_point_str(char32_t c) { return fmt::format("U+{:04X}", static_cast<std::uint32_t>(c)); }

}  // namespace

std::string describe_char(char32_t c) {
    std::string shown;
    switch (c) {
        case '\n': shown = "\\n"; break;
        case '\r': shown = "\\r"; break;
        case '\t': shown = "\\t"; break;
        default:
            if (c < 0x20 || c == 0x7F || !valid_code_point(c) || (c >= 0x80 && c < 0xA0))
                shown = "?";  // unprintable: the U+ form says which
            else
                shown = utf8_of(c);
    }
    return fmt::format("'{}' ({})", shown, code_point_str(c));
}

std::vector<char32_t> utf8_decode(const std::string& utf8, const char* op) {
    std::vector<char32_t> cps;
    cps.reserve(utf8.size());
    if (auto err = decode_utf8(utf8, &cps, nullptr))
        throw ValueError(fmt::format("{}: invalid UTF-8 at byte offset {} (line {}): {}", op, err->offset, err->line,
                                     err->reason));
    return cps;
}

std::string utf8_encode(const std::vector<char32_t>& code_points) {
    std::string out;
    out.reserve(code_points.size());
    for (std::size_t i = 0; i < code_points.size(); ++i) {
        const char32_t c = code_points[i];
        if (!valid_code_point(c))
            throw ValueError(fmt::format("utf8_encode: code point {} at index {} is not a Unicode scalar value "
                                         "(a surrogate or above U+10FFFF)",
                                         code_point_str(c), i));
        out += utf8_of(c);
    }
    return out;
}

void utf8_validate(std::string_view utf8, const char* op) {
    if (auto err = decode_utf8(utf8, nullptr, nullptr))
        throw ValueError(fmt::format("{}: invalid UTF-8 at byte offset {} (line {}): {}", op, err->offset, err->line,
                                     err->reason));
}

namespace {

std::string read_regular_file(const std::string& path, const char* op) {
    // O_NONBLOCK: opening a FIFO with no writer would otherwise wait forever before the type check
    // below could refuse it (it changes nothing for a regular file).
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) throw FormatError(fmt::format("{}: cannot open '{}': {}", op, path, std::strerror(errno)));
    struct Closer {
        int fd;
        ~Closer() { ::close(fd); }
    } closer{fd};
    struct stat st{};
    if (::fstat(fd, &st) != 0)
        throw FormatError(fmt::format("{}: cannot read '{}': {}", op, path, std::strerror(errno)));
    if (!S_ISREG(st.st_mode)) {
        const char* kind = S_ISDIR(st.st_mode)    ? "a directory"
                           : S_ISCHR(st.st_mode)  ? "a character device"
                           : S_ISBLK(st.st_mode)  ? "a block device"
                           : S_ISFIFO(st.st_mode) ? "a pipe (FIFO)"
                           : S_ISSOCK(st.st_mode) ? "a socket"
                                                  : "not a regular file";
        throw FormatError(fmt::format("{}: '{}' is {}, not a regular file (only regular files are read, so a "
                                      "device such as /dev/zero cannot fill memory)",
                                      op, path, kind));
    }
    // One allocation of the size the file has; a file that grows while it is read is read up to
    // that size plus whatever a final short read brings, never without bound.
    const auto size = static_cast<std::uint64_t>(st.st_size);
    if (size > static_cast<std::uint64_t>(std::numeric_limits<std::ptrdiff_t>::max()) / 2)
        throw FormatError(fmt::format("{}: '{}' is {} bytes, more than this process can hold", op, path, size));
    std::string bytes;
    try {
        bytes.resize(static_cast<std::size_t>(size));
    } catch (const std::bad_alloc&) {
        throw FormatError(fmt::format("{}: '{}' is {} bytes, which cannot be allocated", op, path, size));
    }
    std::size_t got = 0;
    while (got < bytes.size()) {
        const ssize_t r = ::read(fd, bytes.data() + got, bytes.size() - got);
        if (r < 0) {
            if (errno == EINTR) continue;
            throw FormatError(fmt::format("{}: cannot read '{}': {}", op, path, std::strerror(errno)));
        }
        if (r == 0) break;  // the file shrank while it was read
        got += static_cast<std::size_t>(r);
    }
    bytes.resize(got);
    return bytes;
}

}  // namespace

std::string read_text_file(const std::string& path) {
    std::string bytes = read_regular_file(path, "read_text_file");
    if (bytes.empty()) throw FormatError(fmt::format("read_text_file: '{}' is empty", path));
    if (auto e = decode_utf8(bytes, nullptr, nullptr))
        throw FormatError(fmt::format("read_text_file: '{}' is not valid UTF-8: byte offset {} (line {}): {}", path,
                                      e->offset, e->line, e->reason));
    return bytes;
}

// ---- Vocab ----------------------------------------------------------------------------------

Vocab::Vocab(std::vector<char32_t> symbols, bool has_unknown) : symbols_(std::move(symbols)), has_unknown_(has_unknown) {
    if (symbols_.empty()) throw ValueError("Vocab: no symbols (a vocabulary needs at least one)");
    ids_.reserve(symbols_.size());
    for (std::size_t i = 0; i < symbols_.size(); ++i) {
        const char32_t c = symbols_[i];
        if (!valid_code_point(c))
            throw ValueError(fmt::format("Vocab: symbol {} is {}, not a Unicode scalar value", i, code_point_str(c)));
        auto [it, inserted] = ids_.emplace(c, static_cast<std::int64_t>(i));
        if (!inserted)
            throw ValueError(fmt::format("Vocab: symbol {} {} duplicates symbol {}", i, describe_char(c), it->second));
    }
}

Vocab Vocab::build(const std::string& utf8_text, VocabOptions options) {
    if (utf8_text.empty()) throw ValueError("Vocab::build: the text is empty");
    std::vector<char32_t> cps = utf8_decode(utf8_text, "Vocab::build");
    std::sort(cps.begin(), cps.end());
    cps.erase(std::unique(cps.begin(), cps.end()), cps.end());
    if (options.add_unknown) {
        // U+FFFD in the text and the unknown symbol are one and the same id.
        cps.erase(std::remove(cps.begin(), cps.end(), kReplacement), cps.end());
        cps.push_back(kReplacement);
    }
    return Vocab(std::move(cps), options.add_unknown);
}

std::int64_t Vocab::unknown_id() const {
    if (!has_unknown_) throw UsageError("Vocab::unknown_id: this vocabulary has no unknown symbol");
    return static_cast<std::int64_t>(symbols_.size()) - 1;
}

std::int64_t Vocab::id(char32_t c) const {
    if (auto it = ids_.find(c); it != ids_.end()) return it->second;
    if (has_unknown_) return unknown_id();
    throw ValueError(fmt::format("Vocab::id: character {} is not in the vocabulary ({} symbols, no unknown symbol)",
                                 describe_char(c), symbols_.size()));
}

char32_t Vocab::symbol(std::int64_t id) const {
    if (id < 0 || id >= static_cast<std::int64_t>(symbols_.size()))
        throw ValueError(fmt::format("Vocab::symbol: id {} is outside [0, {})", id, symbols_.size()));
    return symbols_[static_cast<std::size_t>(id)];
}

std::vector<std::int64_t> Vocab::encode_vector(const std::string& utf8) const {
    std::vector<char32_t> cps;
    std::vector<std::size_t> offsets;
    cps.reserve(utf8.size());
    offsets.reserve(utf8.size());
    if (auto err = decode_utf8(utf8, &cps, &offsets))
        throw ValueError(fmt::format("Vocab::encode: invalid UTF-8 at byte offset {} (line {}): {}", err->offset,
                                     err->line, err->reason));
    std::vector<std::int64_t> ids(cps.size());
    for (std::size_t i = 0; i < cps.size(); ++i) {
        if (auto it = ids_.find(cps[i]); it != ids_.end()) {
            ids[i] = it->second;
        } else if (has_unknown_) {
            ids[i] = unknown_id();
        } else {
            throw ValueError(fmt::format("Vocab::encode: character {} at byte offset {} (line {}) is not in the "
                                         "vocabulary ({} symbols, no unknown symbol)",
                                         describe_char(cps[i]), offsets[i], line_of(utf8, offsets[i]),
                                         symbols_.size()));
        }
    }
    return ids;
}

xt::xarray<std::int64_t> Vocab::encode(const std::string& utf8) const {
    const std::vector<std::int64_t> v = encode_vector(utf8);
    xt::xarray<std::int64_t> out = xt::xarray<std::int64_t>::from_shape({v.size()});
    std::copy(v.begin(), v.end(), out.data());
    return out;
}

std::string Vocab::decode(const std::vector<std::int64_t>& ids) const {
    std::string out;
    out.reserve(ids.size());
    for (std::size_t i = 0; i < ids.size(); ++i) {
        const std::int64_t id = ids[i];
        if (id < 0 || id >= static_cast<std::int64_t>(symbols_.size()))
            throw ValueError(fmt::format("Vocab::decode: id {} at position {} is outside [0, {})", id, i,
                                         symbols_.size()));
        out += utf8_of(symbols_[static_cast<std::size_t>(id)]);
    }
    return out;
}

std::string Vocab::decode(const xt::xarray<std::int64_t>& ids) const {
    if (ids.dimension() != 1) {
        Shape s(ids.shape().begin(), ids.shape().end());
        throw ShapeError(fmt::format("Vocab::decode: ids must be 1-D [N], got shape {} (decode one row or column "
                                     "at a time)",
                                     shape_str(s)));
    }
    return decode(std::vector<std::int64_t>(ids.data(), ids.data() + ids.size()));
}

Tensor Vocab::to_tensor() const {
    xt::xarray<double> v = xt::xarray<double>::from_shape({symbols_.size() + 1});
    for (std::size_t i = 0; i < symbols_.size(); ++i) v.data()[i] = static_cast<double>(symbols_[i]);
    v.data()[symbols_.size()] = has_unknown_ ? 1.0 : 0.0;
    return Tensor(std::move(v));
}

Vocab Vocab::from_tensor(const Tensor& t) {
    if (!t.defined()) throw FormatError("Vocab::from_tensor: the tensor is undefined");
    if (t.dim() != 1 || t.numel() < 2)
        throw FormatError(fmt::format("Vocab::from_tensor: expected a 1-D tensor [size + 1] with size >= 1, got "
                                      "shape {}",
                                      shape_str(t.shape())));
    const std::size_t n = t.numel() - 1;
    std::vector<char32_t> symbols(n);
    for (std::size_t i = 0; i < n; ++i) {
        const double v = t.at(i);
        if (!(v >= 0 && v <= 0x10FFFF) || std::floor(v) != v)
            throw FormatError(fmt::format("Vocab::from_tensor: element {} is {}, not a Unicode code point", i, v));
        if (!valid_code_point(static_cast<char32_t>(v)))
            throw FormatError(fmt::format("Vocab::from_tensor: element {} is {}, a UTF-16 surrogate, which is not a "
                                          "character and has no UTF-8 form",
                                          i, code_point_str(static_cast<char32_t>(v))));
        symbols[i] = static_cast<char32_t>(v);
    }
    const double flag = t.at(n);
    if (flag != 0.0 && flag != 1.0)
        throw FormatError(fmt::format("Vocab::from_tensor: the last element (the unknown flag) is {}, expected 0 or 1",
                                      flag));
    try {
        return Vocab(std::move(symbols), flag == 1.0);
    } catch (const ValueError& e) {
        throw FormatError(fmt::format("Vocab::from_tensor: {}", e.what()));
    }
}

Vocab load_vocab(const std::string& path, const std::string& entry) {
    const NamedTensors entries = load_tensors(path);
    const Tensor* found = nullptr;
    for (const auto& [name, t] : entries)
        if (name == entry) found = &t;
    if (!found) {
        std::vector<std::string> names;
        for (std::size_t i = 0; i < entries.size() && i < 20; ++i) names.push_back("'" + entries[i].first + "'");
        if (entries.size() > 20) names.push_back("...");
        throw FormatError(fmt::format("load_vocab: {} has no entry '{}' (entries: {})", path, entry,
                                      names.empty() ? std::string("none") : fmt::format("{}", fmt::join(names, ", "))));
    }
    try {
        return Vocab::from_tensor(*found);
    } catch (const FormatError& e) {
        throw FormatError(fmt::format("load_vocab: {}: entry '{}': {}", path, entry, e.what()));
    }
}

// ---- id sequences ---------------------------------------------------------------------------

xt::xarray<std::int64_t> batchify(const xt::xarray<std::int64_t>& ids, std::size_t B) {
    if (ids.dimension() != 1) {
        Shape s(ids.shape().begin(), ids.shape().end());
        throw ShapeError(fmt::format("batchify: ids must be 1-D [N], got shape {}", shape_str(s)));
    }
    if (B == 0) throw ValueError("batchify: B (the number of streams) must be at least 1, got 0");
    const std::size_t N = ids.size();
    if (N < B) throw ValueError(fmt::format("batchify: {} ids cannot fill {} streams (need at least {})", N, B, B));
    const std::size_t T = N / B;
    xt::xarray<std::int64_t> out = xt::xarray<std::int64_t>::from_shape({T, B});  // [T, B]
    const std::int64_t* src = ids.data();
    std::int64_t* dst = out.data();
    for (std::size_t b = 0; b < B; ++b)
        for (std::size_t t = 0; t < T; ++t) dst[t * B + b] = src[b * T + t];
    return out;
}

std::pair<xt::xarray<std::int64_t>, xt::xarray<std::int64_t>> split_train_val(const xt::xarray<std::int64_t>& ids,
                                                                               double val_fraction) {
    if (ids.dimension() != 1) {
        Shape s(ids.shape().begin(), ids.shape().end());
        throw ShapeError(fmt::format("split_train_val: ids must be 1-D [N], got shape {}", shape_str(s)));
    }
    if (!(val_fraction > 0.0 && val_fraction < 1.0))
        throw ValueError(fmt::format("split_train_val: val_fraction must be in (0, 1), got {}", val_fraction));
    const std::size_t N = ids.size();
    const auto n_val = static_cast<std::size_t>(std::llround(static_cast<double>(N) * val_fraction));
    if (n_val == 0 || n_val >= N)
        throw ValueError(fmt::format("split_train_val: {} ids with val_fraction {} give {} training and {} "
                                     "validation ids; both must be non-empty",
                                     N, val_fraction, N - std::min(n_val, N), n_val));
    const std::size_t n_train = N - n_val;
    xt::xarray<std::int64_t> train = xt::xarray<std::int64_t>::from_shape({n_train});
    xt::xarray<std::int64_t> val = xt::xarray<std::int64_t>::from_shape({n_val});
    std::copy(ids.data(), ids.data() + n_train, train.data());
    std::copy(ids.data() + n_train, ids.data() + N, val.data());
    return {std::move(train), std::move(val)};
}

}  // namespace tapegrad::nn
