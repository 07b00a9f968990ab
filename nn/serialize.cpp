// tapegrad::nn: .npz reading and writing. The zip container comes from libzip; the .npy format
// (magic, version, a little Python-dict header, raw little-endian data) is small enough to write
// here, with every length and size checked before anything is read.
#include "serialize.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>

#include <fmt/format.h>
#include <zip.h>

namespace tapegrad::nn {

namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr std::size_t kMaxHeader = 1 << 16;         // a real header is ~100 bytes
constexpr std::uint64_t kMaxEntryBytes = 1ull << 34;  // 16 GiB: anything larger is treated as corrupt

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

// Parses one .npy blob; `where` names the file and entry for messages.
Tensor parse_npy(const std::string& b, const std::string& where) {
    auto bad = [&](const std::string& why) { return FormatError(fmt::format("{}: not a valid .npy array: {}", where, why)); };
    if (b.size() < 10 || std::memcmp(b.data(), kMagic, 6) != 0) throw bad("wrong magic (expected \\x93NUMPY)");
    const unsigned major = static_cast<unsigned char>(b[6]);
    std::size_t hlen = 0, start = 0;
    if (major == 1) {
        hlen = static_cast<unsigned char>(b[8]) | (static_cast<std::size_t>(static_cast<unsigned char>(b[9])) << 8);
        start = 10;
    } else if (major == 2 || major == 3) {
        if (b.size() < 12) throw bad("truncated header");
        hlen = 0;
        for (int i = 0; i < 4; ++i) hlen |= static_cast<std::size_t>(static_cast<unsigned char>(b[8 + i])) << (8 * i);
        start = 12;
    } else {
        throw bad(fmt::format("unsupported version {}", major));
    }
    if (hlen > kMaxHeader || start + hlen > b.size())
        throw bad(fmt::format("header length {} does not fit in {} bytes", hlen, b.size()));
    const std::string h = b.substr(start, hlen);
    auto field = [&](const std::string& key) -> std::string {
        const auto k = h.find("'" + key + "'");
        if (k == std::string::npos) throw bad(fmt::format("header has no '{}'", key));
        auto colon = h.find(':', k);
        if (colon == std::string::npos) throw bad(fmt::format("header field '{}' has no value", key));
        std::size_t v = colon + 1;
        while (v < h.size() && h[v] == ' ') ++v;
        return h.substr(v);
    };
    const std::string descr = field("descr");
    DType dtype;
    if (descr.rfind("'<f4'", 0) == 0) dtype = f32;
    else if (descr.rfind("'<f8'", 0) == 0) dtype = f64;
    else throw bad(fmt::format("dtype {} is not supported (only little-endian float32 '<f4' and float64 '<f8')",
                               descr.substr(0, descr.find(','))));
    if (field("fortran_order").rfind("False", 0) != 0)
        throw bad("Fortran-ordered arrays are not supported (save a C-contiguous array)");
    const std::string sh = field("shape");
    if (sh.empty() || sh[0] != '(') throw bad("shape is not a tuple");
    const auto close = sh.find(')');
    if (close == std::string::npos) throw bad("shape tuple is not closed");
    Shape shape;
    std::uint64_t count = 1;
    std::size_t i = 1;
    while (i < close) {
        while (i < close && (sh[i] == ' ' || sh[i] == ',')) ++i;
        if (i >= close) break;
        std::uint64_t d = 0;
        std::size_t digits = 0;
        while (i < close && sh[i] >= '0' && sh[i] <= '9') {
            if (d > (kMaxEntryBytes / 10)) throw bad("a dimension is absurdly large");
            d = d * 10 + static_cast<std::uint64_t>(sh[i] - '0');
            ++i;
            ++digits;
        }
        if (digits == 0) throw bad(fmt::format("bad character '{}' in shape", sh[i]));
        if (d != 0 && count > kMaxEntryBytes / d) throw bad("the shape's element count overflows");
        count *= d;
        shape.push_back(static_cast<std::size_t>(d));
    }
    const std::uint64_t item = dtype == f64 ? 8 : 4;
    if (count > kMaxEntryBytes / item) throw bad("the shape's byte size overflows");
    const std::size_t data_start = start + hlen;
    if (b.size() - data_start != count * item)
        throw bad(fmt::format("shape {} needs {} bytes of data but the entry has {}", shape_str(shape), count * item,
                              b.size() - data_start));
    Tensor t = zeros(shape, dtype);
    std::visit([&](auto& a) { std::memcpy(a.data(), b.data() + data_start, count * item); }, t.mutable_array());
    return t;
}

std::string zip_error_text(int code) {
    zip_error_t e;
    zip_error_init_with_code(&e, code);
    std::string s = zip_error_strerror(&e);
    zip_error_fini(&e);
    return s;
}

void fsync_path(const std::string& p, bool directory) {
    const int fd = ::open(p.c_str(), directory ? O_RDONLY | O_DIRECTORY : O_RDONLY);
    if (fd < 0) return;
    ::fsync(fd);
    ::close(fd);
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
    const std::string tmp = fmt::format("{}.tmp-{}-{}", path, ::getpid(), counter++);
    std::vector<std::string> blobs;  // must outlive zip_close, which reads them
    blobs.reserve(tensors.size());
    int err = 0;
    zip_t* za = zip_open(tmp.c_str(), ZIP_CREATE | ZIP_TRUNCATE, &err);
    if (!za) throw FormatError(fmt::format("save_tensors: cannot create {}: {}", tmp, zip_error_text(err)));
    auto fail = [&](const std::string& why) {
        zip_discard(za);
        std::remove(tmp.c_str());
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
    if (zip_close(za) != 0) {
        const std::string why = zip_strerror(za);
        zip_discard(za);
        std::remove(tmp.c_str());
        throw FormatError(fmt::format("save_tensors: writing {} failed: {}", path, why));
    }
    fsync_path(tmp, false);
    if (std::rename(tmp.c_str(), path.c_str()) != 0) {
        const std::string why = std::strerror(errno);
        std::remove(tmp.c_str());
        throw FormatError(fmt::format("save_tensors: cannot move the new file over {}: {}", path, why));
    }
    const auto dir = target.parent_path();
    fsync_path(dir.empty() ? std::string(".") : dir.string(), true);
}

NamedTensors load_tensors(const std::string& path) {
    int err = 0;
    zip_t* za = zip_open(path.c_str(), ZIP_RDONLY | ZIP_CHECKCONS, &err);
    if (!za) throw FormatError(fmt::format("load_tensors: cannot open {}: {}", path, zip_error_text(err)));
    std::unique_ptr<zip_t, decltype(&zip_discard)> guard(za, &zip_discard);
    NamedTensors out;
    const zip_int64_t n = zip_get_num_entries(za, 0);
    for (zip_int64_t i = 0; i < n; ++i) {
        const auto idx = static_cast<zip_uint64_t>(i);
        zip_stat_t st;
        zip_stat_init(&st);
        if (zip_stat_index(za, idx, 0, &st) != 0 || !(st.valid & ZIP_STAT_NAME) || !(st.valid & ZIP_STAT_SIZE))
            throw FormatError(fmt::format("load_tensors: {}: entry {} is unreadable: {}", path, i, zip_strerror(za)));
        std::string name = st.name;
        const std::string where = fmt::format("{}: entry '{}'", path, name);
        if (name.size() < 5 || name.compare(name.size() - 4, 4, ".npy") != 0)
            throw FormatError(fmt::format("load_tensors: {} is not a .npy array", where));
        if (st.size > kMaxEntryBytes) throw FormatError(fmt::format("load_tensors: {} claims {} bytes", where, st.size));
        std::string buf(static_cast<std::size_t>(st.size), '\0');
        zip_file_t* f = zip_fopen_index(za, idx, 0);
        if (!f) throw FormatError(fmt::format("load_tensors: {}: {}", where, zip_strerror(za)));
        const zip_int64_t got = st.size ? zip_fread(f, buf.data(), st.size) : 0;
        zip_fclose(f);
        if (got < 0 || static_cast<zip_uint64_t>(got) != st.size)
            throw FormatError(fmt::format("load_tensors: {}: read {} of {} bytes (truncated or corrupt)", where, got,
                                          st.size));
        name.resize(name.size() - 4);
        out.emplace_back(name, parse_npy(buf, "load_tensors: " + where));
    }
    return out;
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
