// tapegrad::nn: .npz reading and writing. The zip container comes from libzip; the .npy format
// (magic, version, a little Python-dict header, raw little-endian data) is small enough to write
// here, with every length and size checked before anything is read.
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

namespace tapegrad::nn {

namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr std::size_t kMaxHeader = 1 << 16;           // a real header is ~100 bytes
constexpr std::uint64_t kMaxEntryBytes = 1ull << 34;  // 16 GiB: anything larger is treated as corrupt
constexpr std::size_t kMaxDims = 32;                  // NumPy's own limit
// Deflate cannot expand data by more than 1032:1, so an entry claiming more is lying about its size.
constexpr std::uint64_t kMaxDeflateRatio = 1032;

std::string npy_bytes(const Tensor& t) {
    const Shape s = t.shape();
    std::string dims;
    for (std::size_t d : s) dims += fmt::format("{}, ", d);
    if (s.size() > 1) dims.resize(dims.size() - 2);  // (3,) keeps its comma, (2, 3) does not
    else if (s.size() == 1) dims.pop_back();
    std::string header = fmt::format("{{'descr': '{}', 'fortran_order': False, 'shape': ({}), }}",
                                     t.dtype() == f64 ? "<f8" : "<f4", dims);
    // Pad with spaces so that data starts on a 64-byte boundary, ending the header with '\n'.
    const std::size_t total = 10 + header.size() + 1;
    header.append((64 - total % 64) % 64, ' ');
    header.push_back('\n');
    std::string out(kMagic, 6);
    out.push_back('\x01');
    out.push_back('\x00');
    out.push_back(static_cast<char>(header.size() & 0xff));
    out.push_back(static_cast<char>((header.size() >> 8) & 0xff));
    out += header;
    std::visit([&](const auto& a) {
        out.append(reinterpret_cast<const char*>(a.data()), a.size() * sizeof(a.data()[0]));
    }, t.array());
    return out;
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

// Parses one .npy blob; `where` names the file and entry for messages. Every size is checked
// against the bytes actually present before anything is allocated.
Tensor parse_npy(std::string_view b, const std::string& where) {
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

    DType dtype;
    if (h.descr == "<f4") dtype = f32;
    else if (h.descr == "<f8") dtype = f64;
    else if (h.descr == ">f4" || h.descr == ">f8")
        throw bad(fmt::format("dtype {} is big-endian; only little-endian byte order is supported (save with "
                              "arr.astype('{}'))",
                              excerpt(h.descr), "<" + h.descr.substr(1)));
    else
        throw bad(fmt::format("dtype {} is not supported (only little-endian float32 '<f4' and float64 '<f8')",
                              excerpt(h.descr)));
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
    const std::uint64_t item = dtype == f64 ? 8 : 4;
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
    Tensor t = zeros(h.shape, dtype);
    if (need) std::visit([&](auto& a) { std::memcpy(a.data(), b.data() + data_start, need); }, t.mutable_array());
    return t;
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

// A save killed between creating its temporary file and renaming it leaves "<name>.tmp-<pid>-<n>"
// behind. The next save to the same path removes those of processes that no longer exist (a live
// process may be saving to the same path right now).
void remove_stale_temporaries(const std::filesystem::path& target) {
    namespace fs = std::filesystem;
    const fs::path dir = target.parent_path().empty() ? fs::path(".") : target.parent_path();
    const std::string prefix = target.filename().string() + ".tmp-";
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

// The archive built in memory: a kill can then leave only our own temporary file behind (libzip
// writing a file would add a temporary of its own), and the bytes reach the disk in one checked
// write. numpy.savez() of nothing is the 22-byte end-of-directory record alone, which libzip does
// not produce for an archive without entries, so that case is written directly.
std::string zip_in_memory(const NamedTensors& tensors, const std::string& path) {
    if (tensors.empty()) return std::string("PK\x05\x06", 4) + std::string(18, '\0');
    zip_error_t error;
    zip_error_init(&error);
    zip_source_t* mem = zip_source_buffer_create(nullptr, 0, 0, &error);
    if (!mem) throw FormatError(fmt::format("save_tensors: {}: {}", path, zip_error_strerror(&error)));
    std::unique_ptr<zip_source_t, decltype(&zip_source_free)> mem_guard(mem, &zip_source_free);
    zip_t* za = zip_open_from_source(mem, ZIP_TRUNCATE, &error);
    if (!za) throw FormatError(fmt::format("save_tensors: {}: {}", path, zip_error_strerror(&error)));
    zip_source_keep(mem);  // the archive's close must not free the buffer we read back
    std::vector<std::string> blobs;  // must outlive zip_close, which reads them
    blobs.reserve(tensors.size());
    auto fail = [&](const std::string& why) {
        zip_discard(za);
        return FormatError(fmt::format("save_tensors: {}: {}", path, why));
    };
    for (const auto& [name, t] : tensors) {
        blobs.push_back(npy_bytes(t));
        zip_source_t* src = zip_source_buffer(za, blobs.back().data(), blobs.back().size(), 0);
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
NamedTensors read_archive(zip_t* za, const std::string& path, std::uint64_t archive_bytes) {
    NamedTensors out;
    std::set<std::string> names;
    const zip_int64_t n = zip_get_num_entries(za, 0);
    for (zip_int64_t i = 0; i < n; ++i) {
        const auto idx = static_cast<zip_uint64_t>(i);
        zip_stat_t st;
        zip_stat_init(&st);
        const zip_uint64_t need = ZIP_STAT_NAME | ZIP_STAT_SIZE | ZIP_STAT_COMP_SIZE | ZIP_STAT_COMP_METHOD;
        if (zip_stat_index(za, idx, 0, &st) != 0 || (st.valid & need) != need)
            throw FormatError(fmt::format("load_tensors: {}: entry {} is unreadable: {}", path, i, zip_strerror(za)));
        std::string name = st.name;
        const std::string where = fmt::format("{}: entry {}", path, excerpt(name, 200));
        if (name.size() < 5 || name.compare(name.size() - 4, 4, ".npy") != 0)
            throw FormatError(fmt::format("load_tensors: {} is not a .npy array (an .npz holds only name.npy entries)",
                                          where));
        if (!names.insert(name).second)
            throw FormatError(fmt::format("load_tensors: {} appears twice in the archive", where));
        // The sizes in the zip directory are checked against what the archive can really hold, so
        // an entry that lies about its size is refused before any memory is set aside for it.
        if (st.comp_method != ZIP_CM_STORE && st.comp_method != ZIP_CM_DEFLATE)
            throw FormatError(fmt::format("load_tensors: {} uses compression method {}; only stored and deflated "
                                          "entries are supported (what numpy.savez and savez_compressed write)",
                                          where, st.comp_method));
        if (st.comp_size > archive_bytes)
            throw FormatError(fmt::format("load_tensors: {} claims {} compressed bytes but the archive has only {}",
                                          where, st.comp_size, archive_bytes));
        const bool stored = st.comp_method == ZIP_CM_STORE;
        if ((stored && st.size != st.comp_size) || (!stored && st.size / kMaxDeflateRatio > st.comp_size + 1))
            throw FormatError(fmt::format("load_tensors: {} claims {} bytes, which its {} {} bytes cannot hold",
                                          where, st.size, stored ? "stored" : "deflated", st.comp_size));
        if (st.size > kMaxEntryBytes)
            throw FormatError(fmt::format("load_tensors: {} claims {} bytes (more than {})", where, st.size,
                                          kMaxEntryBytes));
        zip_file_t* f = zip_fopen_index(za, idx, 0);
        if (!f) throw FormatError(fmt::format("load_tensors: {}: {}", where, zip_strerror(za)));
        std::unique_ptr<zip_file_t, decltype(&zip_fclose)> fguard(f, &zip_fclose);
        // Grow the buffer as data really arrives (doubling), so memory follows the bytes present.
        std::string buf;
        std::uint64_t have = 0;
        auto read_failed = [&]() {
            return FormatError(fmt::format("load_tensors: {}: read failed after {} of {} bytes (truncated or "
                                           "corrupt): {}",
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
            throw FormatError(fmt::format("load_tensors: {}: the data ends after {} of the {} bytes its size claims",
                                          where, have, st.size));
        // One more read reaches the end of the entry, where libzip checks the CRC.
        char extra = 0;
        const zip_int64_t more = zip_fread(f, &extra, 1);
        if (more < 0) throw read_failed();
        if (more > 0) throw FormatError(fmt::format("load_tensors: {} holds more data than its size ({} bytes) "
                                                    "claims", where, st.size));
        buf.resize(static_cast<std::size_t>(have));
        name.resize(name.size() - 4);
        out.emplace_back(name, parse_npy(buf, "load_tensors: " + where));
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
NamedTensors load_from_source(zip_source_t* src, const std::string& path, std::uint64_t archive_bytes) {
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
            throw FormatError(fmt::format("load_tensors: {}: entry {} appears twice in the archive", path,
                                          excerpt(dup, 200)));
        throw FormatError(fmt::format("load_tensors: cannot open {} as an .npz (zip) archive: {}", path, why));
    }
    zip_error_fini(&e);
    std::unique_ptr<zip_t, decltype(&zip_discard)> guard(za, &zip_discard);
    return read_archive(za, path, archive_bytes);
}

}  // namespace

void save_tensors(const NamedTensors& tensors, const std::string& path) {
    std::map<std::string, int> seen;
    for (const auto& [name, t] : tensors) {
        if (name.empty()) throw ValueError(fmt::format("save_tensors: {}: an entry has an empty name", path));
        if (!t.defined()) throw ValueError(fmt::format("save_tensors: {}: '{}' is undefined", path, name));
        if (seen[name]++) throw ValueError(fmt::format("save_tensors: {}: name '{}' appears twice", path, name));
    }
    static std::atomic<unsigned> counter{0};
    const std::filesystem::path target(path);
    const std::string bytes = zip_in_memory(tensors, path);
    remove_stale_temporaries(target);
    const std::string tmp = fmt::format("{}.tmp-{}-{}", path, ::getpid(), counter++);
    write_durably(tmp, bytes, path);
    if (std::rename(tmp.c_str(), path.c_str()) != 0) {
        const std::string why = std::strerror(errno);
        std::remove(tmp.c_str());
        throw FormatError(fmt::format("save_tensors: cannot move the new file over {}: {}", path, why));
    }
    const auto dir = target.parent_path();
    fsync_directory(dir.empty() ? std::string(".") : dir.string(), path);
}

std::string to_npy(const Tensor& t) {
    if (!t.defined()) throw ValueError("to_npy: the tensor is undefined");
    return npy_bytes(t);
}

Tensor from_npy(std::string_view bytes, const std::string& name) { return parse_npy(bytes, name); }

NamedTensors load_tensors(const std::string& path) {
    std::error_code ec;
    const auto bytes = std::filesystem::file_size(path, ec);
    if (ec) throw FormatError(fmt::format("load_tensors: cannot open {}: {}", path, ec.message()));
    if (bytes == 0) throw FormatError(fmt::format("load_tensors: {} is empty (0 bytes)", path));
    zip_error_t e;
    zip_error_init(&e);
    zip_source_t* src = zip_source_file_create(path.c_str(), 0, -1, &e);
    if (!src) {
        const std::string why = zip_error_strerror(&e);
        zip_error_fini(&e);
        throw FormatError(fmt::format("load_tensors: cannot open {}: {}", path, why));
    }
    zip_error_fini(&e);
    return load_from_source(src, path, bytes);
}

NamedTensors load_tensors_from_memory(std::string_view bytes, const std::string& name) {
    // libzip takes zero bytes for an empty archive; numpy and a truncated download both disagree.
    if (bytes.empty()) throw FormatError(fmt::format("load_tensors: {} is empty (0 bytes)", name));
    zip_error_t e;
    zip_error_init(&e);
    zip_source_t* src = zip_source_buffer_create(bytes.data(), bytes.size(), 0, &e);
    if (!src) {
        const std::string why = zip_error_strerror(&e);
        zip_error_fini(&e);
        throw FormatError(fmt::format("load_tensors: {}: {}", name, why));
    }
    zip_error_fini(&e);
    return load_from_source(src, name, bytes.size());
}

NamedTensors state_dict(const Module& module) {
    NamedTensors out;
    for (auto& [name, p] : module.named_parameters()) out.emplace_back(name, p.detach());
    return out;
}

void load_state_dict(Module& module, const NamedTensors& state) {
    std::map<std::string, Tensor> given;
    std::vector<std::string> problems;
    for (const auto& [name, t] : state)
        if (!given.emplace(name, t).second) problems.push_back(fmt::format("'{}' appears twice", name));
    const NamedTensors params = module.named_parameters();
    for (const auto& [name, p] : params) {
        auto it = given.find(name);
        if (it == given.end()) {
            problems.push_back(fmt::format("missing '{}' ({} {})", name, shape_str(p.shape()), dtype_name(p.dtype())));
            continue;
        }
        const Tensor& t = it->second;
        if (t.shape() != p.shape())
            problems.push_back(fmt::format("'{}' has shape {} but the model's is {}", name, shape_str(t.shape()),
                                           shape_str(p.shape())));
        else if (t.dtype() != p.dtype())
            problems.push_back(fmt::format("'{}' is {} but the model's is {} (convert the model with .to() first)", name,
                                           dtype_name(t.dtype()), dtype_name(p.dtype())));
        given.erase(it);
    }
    for (const auto& [name, t] : given)
        problems.push_back(fmt::format("unexpected '{}' ({})", name, shape_str(t.shape())));
    if (!problems.empty())
        throw ValueError(fmt::format("load_state_dict into {}: {} problem(s): {}", module.type_name(), problems.size(),
                                     fmt::join(problems, "; ")));
    std::map<std::string, Tensor> values(state.begin(), state.end());
    for (auto& [name, p] : params) {
        Tensor q = p;
        q.mutable_array() = values.at(name).array();
    }
}

void save(const Module& module, const std::string& path) { save_tensors(state_dict(module), path); }
void load(Module& module, const std::string& path) {
    try {
        load_state_dict(module, load_tensors(path));
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
    NamedTensors model, opt;
    for (auto& [name, t] : load_tensors(path)) {
        if (name.rfind(kOptimizerPrefix, 0) == 0) opt.emplace_back(name.substr(kOptimizerPrefix.size()), t);
        else model.emplace_back(name, t);
    }
    try {
        load_state_dicts(module, optimizer, model, opt);
    } catch (const ValueError& e) {
        throw ValueError(fmt::format("load {}: {}", path, e.what()));
    }
}

}  // namespace tapegrad::nn
