// Hostile files: every loader (.npy, .npz, checkpoints, vocabularies, CSV) refuses truncated,
// corrupted and lying files with a FormatError naming the file, the entry and what is wrong, and
// checks claimed sizes against the bytes really present before allocating anything. The archives
// here are written byte by byte (a minimal zip writer below), so each one lies in exactly one way.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include <tapegrad/tapegrad.hpp>

#include "test_util.hpp"
#include "zip_writer.hpp"

using namespace tapegrad;
using namespace tapegrad::test;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

// The expression throws exactly `Type` (or a subclass) and its message matches.
#define CHECK_REJECTS(expr, Type, matcher) \
    do {                                   \
        CHECK_THROWS_AS(expr, Type);       \
        CHECK_THROWS_WITH(expr, matcher);  \
    } while (0)

namespace {

const ScratchDir scratch("tapegrad_test_hostile");

// ---- .npy blobs ---------------------------------------------------------------------------------

// A version 1.0 .npy with the given header dict (padded like numpy pads it) and raw data.
std::string npy(const std::string& dict, const std::string& data) {
    std::string header = dict;
    header.append((64 - (10 + header.size() + 1) % 64) % 64, ' ');
    header.push_back('\n');
    std::string out("\x93NUMPY\x01\x00", 8);
    put16(out, static_cast<std::uint32_t>(header.size()));
    return out + header + data;
}
std::string dict(const std::string& descr, const std::string& fortran, const std::string& shape) {
    return "{'descr': '" + descr + "', 'fortran_order': " + fortran + ", 'shape': " + shape + ", }";
}
std::string f64_bytes(const std::vector<double>& v) {
    return {reinterpret_cast<const char*>(v.data()), v.size() * sizeof(double)};
}

ZipEntry entry(std::string name, std::string data, bool deflate = false) {
    ZipEntry e;
    e.name = std::move(name);
    e.data = std::move(data);
    e.deflate = deflate;
    return e;
}
ZipEntry with_method(ZipEntry e, std::uint16_t method) {
    e.method = method;
    return e;
}
// The entry with headers claiming `size` uncompressed bytes (and `comp` compressed ones).
ZipEntry claiming(ZipEntry e, std::uint32_t size, std::optional<std::uint32_t> comp = {}) {
    e.claim_size = size;
    e.claim_comp = comp;
    return e;
}

const std::string kGoodNpy = npy(dict("<f8", "False", "(2,)"), f64_bytes({1.5, -2.0}));

// A module and optimizer with state, for checkpoints.
struct Trained {
    nn::Linear lin{3, 2};
    nn::Adam opt{lin.parameters()};
    Generator gen{7};
    Trained() {
        Tape tape;
        Tensor loss = sum(lin(Tensor::of({{1.0, 2.0, 3.0}})));
        tape.backward(loss);
        opt.step();
    }
};

}  // namespace

// ---- .npy ---------------------------------------------------------------------------------------

TEST_CASE("hostile .npy: the well-formed reference parses exactly", "[nn][hostile][npy]") {
    const Tensor t = nn::from_npy(kGoodNpy);
    REQUIRE(t.dtype() == f64);
    REQUIRE(t.shape() == Shape{2});
    CHECK(t.at(0) == 1.5);
    CHECK(t.at(1) == -2.0);
    // The library's own writer and reader agree, for both dtypes and a 0-d array.
    for (const Tensor& x : {Tensor::of({{1.0, 2.0}, {3.0, 4.0}}, f32), Tensor::scalar(3.25, f64)}) {
        const Tensor y = nn::from_npy(nn::to_npy(x));
        REQUIRE(y.shape() == x.shape());
        REQUIRE(y.dtype() == x.dtype());
        for (std::size_t i = 0; i < x.numel(); ++i) CHECK(y.at(i) == x.at(i));
    }
}

TEST_CASE("hostile .npy: wrong magic", "[nn][hostile][npy]") {
    std::string b = kGoodNpy;
    b[1] = 'X';
    CHECK_REJECTS(nn::from_npy(b, "w.npy"), FormatError, Contains("w.npy") && Contains("wrong magic"));
    CHECK_REJECTS(nn::from_npy("", "w.npy"), FormatError, Contains("wrong magic"));
}

TEST_CASE("hostile .npy: unsupported version", "[nn][hostile][npy]") {
    std::string b = kGoodNpy;
    b[6] = '\x07';
    CHECK_REJECTS(nn::from_npy(b), FormatError, Contains("unsupported format version 7"));
}

TEST_CASE("hostile .npy: absurd header sizes", "[nn][hostile][npy]") {
    // Version 2 has a 4-byte header length: 0xFFFFFFF0 must not be believed.
    std::string v2("\x93NUMPY\x02\x00", 8);
    put32(v2, 0xFFFFFFF0u);
    v2 += "{}";
    CHECK_REJECTS(nn::from_npy(v2), FormatError, Contains("header length 4294967280 is absurd"));
    // A plausible length that runs past the end of the blob.
    std::string v1("\x93NUMPY\x01\x00", 8);
    put16(v1, 1000);
    v1 += "{'descr': '<f8'";
    CHECK_REJECTS(nn::from_npy(v1), FormatError, Contains("truncated") && Contains("header length is 1000"));
}

TEST_CASE("hostile .npy: every truncation of a valid array is refused", "[nn][hostile][npy]") {
    const std::string good = nn::to_npy(Tensor::of({{1.0, 2.0, 3.0}, {4.0, 5.0, 6.0}}, f32));
    for (std::size_t n = 0; n < good.size(); ++n) {
        INFO("first " << n << " of " << good.size() << " bytes");
        CHECK_THROWS_AS(nn::from_npy(good.substr(0, n)), FormatError);
    }
    CHECK_REJECTS(nn::from_npy(good.substr(0, good.size() - 1)), FormatError,
                  Contains("truncated data") && Contains("needs 24 bytes but only 23"));
}

TEST_CASE("hostile .npy: data shorter or longer than the shape says", "[nn][hostile][npy]") {
    CHECK_REJECTS(nn::from_npy(npy(dict("<f8", "False", "(3,)"), f64_bytes({1, 2}))), FormatError,
                  Contains("truncated data") && Contains("needs 24 bytes but only 16"));
    CHECK_REJECTS(nn::from_npy(npy(dict("<f8", "False", "(1,)"), f64_bytes({1, 2}))), FormatError,
                  Contains("16 bytes follow the header but shape [1] needs 8"));
}

TEST_CASE("hostile .npy: shapes whose element count is absurd or overflows", "[nn][hostile][npy]") {
    // 10^15 elements in one dimension, and as a product that fits in 64 bits.
    CHECK_REJECTS(nn::from_npy(npy(dict("<f4", "False", "(1000000000000000,)"), "")), FormatError,
                  Contains("absurdly large"));
    CHECK_REJECTS(nn::from_npy(npy(dict("<f4", "False", "(100000, 100000, 100000)"), "")), FormatError,
                  Contains("absurdly large"));
    // A product that wraps around 2^64 (2^32 cubed) must not look small.
    CHECK_REJECTS(nn::from_npy(npy(dict("<f8", "False", "(4294967296, 4294967296, 4294967296)"), "")),
                  FormatError, Contains("absurdly large"));
    CHECK_REJECTS(nn::from_npy(npy(dict("<f8", "False", "(99999999999999999999999,)"), "")), FormatError,
                  Contains("absurdly large"));
    // 10^9 float32 (4 GB) is a size a real file may have; 8 bytes of data are refused by comparison,
    // before anything is allocated.
    CHECK_REJECTS(nn::from_npy(npy(dict("<f4", "False", "(1000000000,)"), f64_bytes({0}))), FormatError,
                  Contains("needs 4000000000 bytes but only 8"));
    // A zero dimension makes the array empty, but the other sizes must still be sane: their product
    // sets the strides. This file (found by fuzzing) overflowed them inside xtensor.
    const Tensor empty = nn::from_npy(npy(dict("<f4", "False", "(0, 5)"), ""));
    CHECK(empty.numel() == 0);
    CHECK(empty.shape() == Shape{0, 5});
    CHECK_REJECTS(nn::from_npy(npy(dict("<f8", "False", "(0, 042949662, 7662, 71,91, 7662,1, 1, 2)"), "")),
                  FormatError, Contains("absurdly large"));
    CHECK_REJECTS(nn::from_npy(npy(dict("<f4", "False", "(4294967296, 0, 4294967296, 4294967296)"), "")),
                  FormatError, Contains("absurdly large"));
    std::string dims = "(";
    for (int i = 0; i < 40; ++i) dims += "1, ";
    CHECK_REJECTS(nn::from_npy(npy(dict("<f4", "False", dims + ")"), "")), FormatError,
                  Contains("more than 32 dimensions"));
}

TEST_CASE("hostile .npy: wrong dtypes", "[nn][hostile][npy]") {
    for (const std::string descr : {"<i4", "<f2", "|u1", "<c16", "O", "<U3"}) {
        INFO(descr);
        CHECK_REJECTS(nn::from_npy(npy(dict(descr, "False", "(1,)"), "12345678")), FormatError,
                      Contains("dtype '" + descr + "' is not supported"));
    }
    CHECK_REJECTS(nn::from_npy(npy("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }", "1234")),
                  FormatError, Contains("structured dtypes"));
}

TEST_CASE("hostile .npy: wrong byte order", "[nn][hostile][npy]") {
    CHECK_REJECTS(nn::from_npy(npy(dict(">f8", "False", "(2,)"), f64_bytes({1, 2})), "be.npy"), FormatError,
                  Contains("be.npy") && Contains("big-endian") && Contains("'<f8'"));
    CHECK_REJECTS(nn::from_npy(npy(dict(">f4", "False", "(2,)"), "12345678")), FormatError, Contains("big-endian"));
}

TEST_CASE("hostile .npy: Fortran order", "[nn][hostile][npy]") {
    CHECK_REJECTS(nn::from_npy(npy(dict("<f8", "True", "(2, 2)"), f64_bytes({1, 2, 3, 4}))), FormatError,
                  Contains("Fortran-ordered arrays are not supported"));
    // One non-trivial dimension: both orders are the same bytes, so it is read.
    const Tensor t = nn::from_npy(npy(dict("<f8", "True", "(1, 3)"), f64_bytes({1, 2, 3})));
    CHECK(t.shape() == Shape{1, 3});
    CHECK(t.at(2) == 3.0);
    CHECK_REJECTS(nn::from_npy(npy(dict("<f8", "Maybe", "(1,)"), f64_bytes({1}))), FormatError,
                  Contains("expected True or False"));
}

TEST_CASE("hostile .npy: malformed header dicts", "[nn][hostile][npy]") {
    const std::string d8 = f64_bytes({1});
    CHECK_REJECTS(nn::from_npy(npy("{'descr': '<f8', 'descr': '<f4', 'fortran_order': False, 'shape': (1,)}", d8)),
                  FormatError, Contains("the key 'descr' twice"));
    CHECK_REJECTS(nn::from_npy(npy("{'descr': '<f8', 'fortran_order': False}", d8)), FormatError,
                  Contains("no 'shape'"));
    CHECK_REJECTS(nn::from_npy(npy("{'descr': '<f8', 'fortran_order': False, 'shape': (1,), 'x': 1}", d8)),
                  FormatError, Contains("unknown header key 'x'"));
    CHECK_REJECTS(nn::from_npy(npy(dict("<f8", "False", "(1, x)"), d8)), FormatError,
                  Contains("bad character 'x' in 'shape'"));
    CHECK_REJECTS(nn::from_npy(npy(dict("<f8", "False", "(-1,)"), d8)), FormatError, Contains("bad character '-'"));
    CHECK_REJECTS(nn::from_npy(npy(dict("<f8", "False", "[1]"), d8)), FormatError, Contains("not a tuple"));
    CHECK_REJECTS(nn::from_npy(npy("{'descr': '<f8, 'fortran_order': False, 'shape': (1,)}", d8)), FormatError,
                  Contains("not a valid .npy array"));
    CHECK_REJECTS(nn::from_npy(npy("{'descr': '<f8', 'fortran_order': False, 'shape': (1,)} junk", d8)),
                  FormatError, Contains("unexpected 'junk' after"));
    CHECK_REJECTS(nn::from_npy(npy("{'descr': '<f8', 'fortran_order': False, 'shape': (1,", d8)), FormatError,
                  Contains("ends in the middle"));
}

// ---- .npz ---------------------------------------------------------------------------------------

TEST_CASE("hostile .npz: a hand-written archive reads, stored or deflated", "[nn][hostile][npz]") {
    const auto entries = nn::load_tensors_from_memory(
        make_zip({entry("a.npy", kGoodNpy), entry("b.npy", kGoodNpy, true)}));
    REQUIRE(entries.size() == 2);
    CHECK(entries[0].first == "a");
    CHECK(entries[1].first == "b");
    CHECK(entries[1].second.at(0) == 1.5);
    // And the library's own files read the same from memory as from disk.
    const auto path = scratch("own.npz");
    nn::save_tensors({{"w", Tensor::of({1.0, 2.0, 3.0})}}, path.string());
    const auto mem = nn::load_tensors_from_memory(read_all(path), path.string());
    REQUIRE(mem.size() == 1);
    CHECK(mem[0].second.at(2) == 3.0);
}

TEST_CASE("hostile .npz: not a zip archive", "[nn][hostile][npz]") {
    const auto p = write_file(scratch("garbage.npz"), "PK\x03\x04 but nothing else of a zip");
    CHECK_REJECTS(nn::load_tensors(p.string()), FormatError,
                  Contains("garbage.npz") && Contains("cannot open") && Contains(".npz (zip) archive"));
    CHECK_REJECTS(nn::load_tensors_from_memory("", "empty.npz"), FormatError, Contains("empty.npz is empty"));
    CHECK_REJECTS(nn::load_tensors(write_file(scratch("zero.npz"), "").string()), FormatError,
                  Contains("zero.npz is empty"));
    CHECK_REJECTS(nn::load_tensors(scratch("absent.npz").string()), FormatError, Contains("absent.npz"));
}

TEST_CASE("hostile .npz: every truncation of a valid archive is refused", "[nn][hostile][npz]") {
    const std::string good = make_zip({entry("a.npy", kGoodNpy), entry("b.npy", kGoodNpy)});
    for (std::size_t n = 0; n < good.size(); ++n) {
        INFO("first " << n << " of " << good.size() << " bytes");
        CHECK_THROWS_AS(nn::load_tensors_from_memory(good.substr(0, n), "cut.npz"), FormatError);
    }
    const auto p = write_file(scratch("cut.npz"), good.substr(0, good.size() - 30));
    CHECK_REJECTS(nn::load_tensors(p.string()), FormatError, Contains("cut.npz"));
}

TEST_CASE("hostile .npz: corrupted data fails its checksum", "[nn][hostile][npz]") {
    std::string z = make_zip({entry("a.npy", kGoodNpy)});
    const auto pos = z.find(kGoodNpy) + kGoodNpy.size() - 3;  // inside the float data
    z[pos] = static_cast<char>(z[pos] ^ 0x55);
    CHECK_REJECTS(nn::load_tensors_from_memory(z, "flip.npz"), FormatError,
                  Contains("flip.npz: entry 'a.npy'") && Contains("CRC"));
}

TEST_CASE("hostile .npz: duplicate names", "[nn][hostile][npz]") {
    const std::string z = make_zip({entry("w.npy", kGoodNpy), entry("w.npy", kGoodNpy)});
    CHECK_REJECTS(nn::load_tensors_from_memory(z, "dup.npz"), FormatError,
                  Contains("dup.npz") && Contains("'w.npy' appears twice"));
    const auto p = write_file(scratch("dup.npz"), z);
    CHECK_REJECTS(nn::load_tensors(p.string()), FormatError, Contains("dup.npz") && Contains("appears twice"));
}

TEST_CASE("hostile .npz: entries that are not .npy arrays", "[nn][hostile][npz]") {
    CHECK_REJECTS(nn::load_tensors_from_memory(make_zip({entry("readme.txt", "hello")}), "x.npz"),
                  FormatError, Contains("x.npz: entry 'readme.txt' is not a .npy array"));
    CHECK_REJECTS(nn::load_tensors_from_memory(make_zip({entry(".npy", kGoodNpy)}), "x.npz"), FormatError,
                  Contains("is not a .npy array"));
    // A bad .npy inside names the file and the entry.
    std::string bad = kGoodNpy;
    bad[0] = 'Z';
    CHECK_REJECTS(nn::load_tensors_from_memory(make_zip({entry("w.npy", bad)}), "x.npz"), FormatError,
                  Contains("x.npz: entry 'w.npy': not a valid .npy array: wrong magic"));
}

TEST_CASE("hostile .npz: entries that lie about their size", "[nn][hostile][npz]") {
    // A stored entry claiming 4 GB in a 200-byte archive: refused from the directory alone.
    CHECK_REJECTS(nn::load_tensors_from_memory(
                      make_zip({claiming(entry("w.npy", kGoodNpy), 0xFFFFFFF0u)}), "big.npz"),
                  FormatError, Contains("big.npz") && Contains("'w.npy'") && Contains("claims 4294967280 bytes"));
    // A deflated entry claiming more than deflate can expand its few bytes to.
    CHECK_REJECTS(nn::load_tensors_from_memory(
                      make_zip({claiming(entry("w.npy", kGoodNpy, true), 0xFFFFFFF0u)}),
                      "bomb.npz"),
                  FormatError, Contains("claims 4294967280 bytes, which its deflated"));
    // More compressed bytes than the whole archive has.
    CHECK_REJECTS(nn::load_tensors_from_memory(
                      make_zip({claiming(entry("w.npy", kGoodNpy), 0x7FFFFFFFu, 0x7FFFFFFFu)}),
                      "huge.npz"),
                  FormatError, Contains("huge.npz"));
    // A deflated entry whose data ends before its (plausible) size.
    const auto plausible = static_cast<std::uint32_t>(kGoodNpy.size() + 100);
    CHECK_REJECTS(nn::load_tensors_from_memory(
                      make_zip({claiming(entry("w.npy", kGoodNpy, true), plausible)}),
                      "short.npz"),
                  FormatError, Contains("short.npz: entry 'w.npy'") &&
                      Contains(fmt::format("ends after {} of the {} bytes", kGoodNpy.size(), plausible)));
    // A size smaller than the data: the .npy inside is then cut short.
    const auto smaller = static_cast<std::uint32_t>(kGoodNpy.size() - 8);
    CHECK_THROWS_AS(nn::load_tensors_from_memory(
                        make_zip({claiming(entry("w.npy", kGoodNpy, true), smaller)}),
                        "small.npz"),
                    FormatError);
    // A compression method numpy never writes (bzip2).
    CHECK_REJECTS(nn::load_tensors_from_memory(make_zip({with_method(entry("w.npy", kGoodNpy), 12)}),
                                               "bz.npz"),
                  FormatError, Contains("compression method 12"));
}

// ---- checkpoints --------------------------------------------------------------------------------

TEST_CASE("hostile checkpoint: truncated files name the checkpoint and change nothing", "[nn][hostile][checkpoint]") {
    Trained a;
    const auto path = scratch("ckpt.npz");
    nn::save_checkpoint(path.string(), a.lin, a.opt, 3, a.gen);
    const std::string bytes = read_all(path);
    Trained b;
    const double w0 = b.lin.weight.at(0);
    for (std::size_t n : {std::size_t{0}, std::size_t{10}, bytes.size() / 2, bytes.size() - 1}) {
        INFO("first " << n << " bytes");
        const auto cut = write_file(scratch("ckpt_cut.npz"), bytes.substr(0, n));
        CHECK_REJECTS(nn::load_checkpoint(cut.string(), b.lin, b.opt, b.gen), FormatError,
                      Contains("load_checkpoint") && Contains("ckpt_cut.npz"));
    }
    CHECK(b.lin.weight.at(0) == w0);
}

TEST_CASE("hostile checkpoint: entries with wrong dtypes or values", "[nn][hostile][checkpoint]") {
    Trained a;
    const auto path = scratch("ckpt_ok.npz");
    nn::save_checkpoint(path.string(), a.lin, a.opt, 3, a.gen);
    const nn::NamedTensors good = nn::load_tensors(path.string());
    // The entries of the good checkpoint with `name` replaced by `value` (or dropped if undefined).
    auto with = [&](const std::string& name, const Tensor& value) {
        nn::NamedTensors out;
        bool found = false;
        for (const auto& [n, t] : good) {
            if (n != name) out.emplace_back(n, t);
            else if ((found = true), value.defined()) out.emplace_back(n, value);
        }
        if (!found) out.emplace_back(name, value);
        return out;
    };
    Trained b;
    auto restore = [&](const nn::NamedTensors& e) { return nn::restore_checkpoint(e, "c.npz", b.lin, b.opt, b.gen); };
    CHECK(restore(good).step == 3);  // the reference restores
    Trained c;
    const double c_weight = c.lin.weight.at(0);
    const std::uint64_t c_draw = Generator(c.gen).next_u64();
    const double c_lr = c.opt.lr();
    auto restore_c = [&](const nn::NamedTensors& e) {
        return nn::restore_checkpoint(e, "c.npz", c.lin, c.opt, c.gen);
    };
    CHECK_REJECTS(restore_c(with("checkpoint.step", Tensor::scalar(3, f32))), FormatError,
                  Contains("c.npz") && Contains("'checkpoint.step' is float32") && Contains("expected one float64"));
    for (double bad_step : {-1.0, 2.5, std::nan(""), 1e300}) {
        INFO(bad_step);
        CHECK_REJECTS(restore_c(with("checkpoint.step", Tensor::scalar(bad_step, f64))), FormatError,
                      Contains("not a step count"));
    }
    CHECK_REJECTS(restore_c(with("checkpoint.version", Tensor::scalar(2, f64))), FormatError,
                  Contains("version 2 is not supported"));
    CHECK_REJECTS(restore_c(with("checkpoint.lr", Tensor::scalar(-1, f64))), FormatError,
                  Contains("not a learning rate"));
    CHECK_REJECTS(restore_c(with("checkpoint.generator", Tensor::of({65.0, 300.0}, f64))), FormatError,
                  Contains("'checkpoint.generator' element 1 is 300, not a byte"));
    CHECK_REJECTS(restore_c(with("checkpoint.generator", Tensor::of({65.0, 66.0}, f64))), FormatError,
                  Contains("generator state is corrupt"));
    CHECK_REJECTS(restore_c(with("checkpoint.generator", Tensor())), FormatError, Contains("'checkpoint.generator'"));
    CHECK_REJECTS(restore_c(with("checkpoint.surprise", Tensor::scalar(1, f64))), FormatError,
                  Contains("unknown entry 'checkpoint.surprise'"));
    CHECK_REJECTS(restore_c(with("extra.", Tensor::scalar(1, f64))), FormatError, Contains("empty name"));
    // The optimizer's step counters become integers: absurd ones are a damaged file, not undefined behaviour.
    for (const std::string name : {"optimizer.step", "optimizer.0.step"}) {
        for (double bad_step : {-3.0, std::nan(""), 1e300, 0.5}) {
            INFO(name << " = " << bad_step);
            CHECK_REJECTS(restore_c(with(name, Tensor::scalar(bad_step, f64))), FormatError,
                          Contains("'" + name + "'") && Contains("not a step count"));
        }
    }
    // Shapes that do not fit the model: a ValueError listing them.
    CHECK_REJECTS(restore_c(with("weight", zeros({5}, f32))), ValueError, Contains("'weight' has shape [5]"));
    // Nothing changed by any of the refusals (c is as it was built; b took the good checkpoint).
    CHECK(c.lin.weight.at(0) == c_weight);
    CHECK(Generator(c.gen).next_u64() == c_draw);
    CHECK(c.opt.lr() == c_lr);
    CHECK(b.lin.weight.at(0) == a.lin.weight.at(0));
}

TEST_CASE("hostile checkpoint: duplicate names and non-checkpoints", "[nn][hostile][checkpoint]") {
    Trained a, b;
    const auto path = scratch("ckpt_dup.npz");
    nn::save_checkpoint(path.string(), a.lin, a.opt, 1, a.gen);
    nn::NamedTensors entries = nn::load_tensors(path.string());
    entries.push_back(entries.front());
    CHECK_REJECTS(nn::restore_checkpoint(entries, "dup.npz", b.lin, b.opt, b.gen), FormatError,
                  Contains("dup.npz") && Contains("'" + entries.front().first + "' appears twice"));
    // A valid archive of valid arrays that is not a checkpoint.
    const auto plain = write_file(scratch("not_ckpt.npz"), make_zip({entry("weight.npy", kGoodNpy)}));
    CHECK_REJECTS(nn::load_checkpoint(plain.string(), b.lin, b.opt, b.gen), FormatError,
                  Contains("not_ckpt.npz") && Contains("not a checkpoint"));
    // A hostile .npy inside a checkpoint names the file and the entry.
    std::string be = nn::to_npy(Tensor::scalar(1.0, f64));
    be[be.find("<f8")] = '>';
    const auto lying = write_file(scratch("be_ckpt.npz"), make_zip({entry("checkpoint.step.npy", be)}));
    CHECK_REJECTS(nn::load_checkpoint(lying.string(), b.lin, b.opt, b.gen), FormatError,
                  Contains("be_ckpt.npz: entry 'checkpoint.step.npy'") && Contains("big-endian"));
}

// ---- vocabularies -------------------------------------------------------------------------------

TEST_CASE("hostile vocabulary: invalid code points and UTF-8", "[nn][hostile][vocab]") {
    CHECK_REJECTS(nn::Vocab::from_tensor(Tensor::of({97.0, 0xD800, 0.0}, f64)), FormatError,
                  Contains("element 1 is U+D800, a UTF-16 surrogate"));
    CHECK_REJECTS(nn::Vocab::from_tensor(Tensor::of({97.0, 0x110000, 0.0}, f64)), FormatError,
                  Contains("element 1 is 1114112, not a Unicode code point"));
    for (double bad : {-1.0, 97.5, std::nan(""), HUGE_VAL}) {
        INFO(bad);
        CHECK_REJECTS(nn::Vocab::from_tensor(Tensor::of({bad, 0.0}, f64)), FormatError,
                      Contains("element 0") && Contains("not a Unicode code point"));
    }
    // Text with invalid UTF-8, in a file and in memory: the byte offset and line are named.
    const std::vector<std::pair<std::string, std::string>> bad_texts = {
        {"ab\n\xC0\xAF", "overlong"},                   // '/' as two bytes
        {"ab\n\xED\xA0\x80", "surrogate"},              // U+D800 encoded
        {"ab\ncd\xE2\x82", "cut short"},                // a 3-byte sequence missing its last byte
        {"ab\n\x80", "continuation byte"},              // no lead byte
        {"ab\n\xFF", "never occurs"},                   // not UTF-8 at all
        {"ab\n\xF4\x90\x80\x80", "above U+10FFFF"},     // U+110000
    };
    for (const auto& [text, why] : bad_texts) {
        INFO(why);
        const auto p = write_file(scratch("bad_utf8.txt"), text);
        CHECK_REJECTS(nn::read_text_file(p.string()), FormatError,
                      Contains("bad_utf8.txt") && Contains("not valid UTF-8") && Contains("(line 2)") &&
                          Contains(why));
        CHECK_REJECTS(nn::Vocab::build(text), ValueError, Contains("Vocab::build") && Contains(why));
    }
}

TEST_CASE("hostile vocabulary: duplicates, wrong shapes, bad flags", "[nn][hostile][vocab]") {
    CHECK_REJECTS(nn::Vocab::from_tensor(Tensor::of({97.0, 98.0, 97.0, 0.0}, f64)), FormatError,
                  Contains("duplicates symbol 0"));
    CHECK_REJECTS(nn::Vocab::from_tensor(Tensor::of({97.0, 2.0}, f64)), FormatError,
                  Contains("unknown flag) is 2, expected 0 or 1"));
    CHECK_REJECTS(nn::Vocab::from_tensor(Tensor::of({0.0}, f64)), FormatError, Contains("size >= 1"));
    CHECK_REJECTS(nn::Vocab::from_tensor(Tensor::of({{97.0, 0.0}}, f64)), FormatError, Contains("shape [1, 2]"));
    CHECK_REJECTS(nn::Vocab::from_tensor(Tensor()), FormatError, Contains("undefined"));
}

TEST_CASE("hostile vocabulary: load_vocab names the file and the entry", "[nn][hostile][vocab]") {
    const nn::Vocab v = nn::Vocab::build("héllo wörld");
    const auto good = scratch("vocab.npz");
    nn::save_tensors({{"vocab", v.to_tensor()}}, good.string());
    CHECK(nn::load_vocab(good.string(), "vocab").symbols() == v.symbols());
    CHECK_REJECTS(nn::load_vocab(good.string(), "extra.vocab"), FormatError,
                  Contains("vocab.npz has no entry 'extra.vocab' (entries: 'vocab')"));
    const auto bad = scratch("vocab_bad.npz");
    nn::save_tensors({{"vocab", Tensor::of({97.0, 0xDFFF, 0.0}, f64)}}, bad.string());
    CHECK_REJECTS(nn::load_vocab(bad.string(), "vocab"), FormatError,
                  Contains("vocab_bad.npz: entry 'vocab'") && Contains("U+DFFF"));
    const auto cut = write_file(scratch("vocab_cut.npz"), read_all(good).substr(0, 50));
    CHECK_REJECTS(nn::load_vocab(cut.string(), "vocab"), FormatError, Contains("vocab_cut.npz"));
}

// ---- CSV ----------------------------------------------------------------------------------------

TEST_CASE("hostile CSV: non-numeric, non-finite and short or long rows", "[nn][hostile][csv]") {
    CHECK_REJECTS(nn::parse_csv("a,b\n1,2\n3,x\n", "t.csv"), FormatError,
                  Contains("'t.csv' line 3: column 'b' holds 'x', not a finite number"));
    for (const std::string v : {"nan", "inf", "-inf", "1e999", "0x10", "1,5", "--1", "1e", ""}) {
        INFO(v);
        CHECK_THROWS_AS(nn::parse_csv("a\n1\n" + v + "\n2\n", "t.csv"), FormatError);
    }
    CHECK_REJECTS(nn::parse_csv("a,b,c\n1,2,3\n4,5\n", "t.csv"), FormatError,
                  Contains("line 3: 2 fields, expected 3"));
    CHECK_REJECTS(nn::parse_csv("a,b\n1,2,3\n", "t.csv"), FormatError, Contains("line 2: 3 fields, expected 2"));
    CHECK_REJECTS(nn::parse_csv(std::string("a\n1\n\0\n", 7), "nul.csv"), FormatError,
                  Contains("nul.csv") && Contains("line 3") && Contains("holds '\\x00', not a finite number"));
    const auto p = write_file(scratch("short_row.csv"), "x,y\n1,2\n3\n");
    CHECK_REJECTS(nn::read_csv(p.string()), FormatError,
                  Contains("read_csv") && Contains("short_row.csv") && Contains("line 3: 1 fields, expected 2"));
}

TEST_CASE("hostile CSV: invalid UTF-8, empty files, blank lines", "[nn][hostile][csv]") {
    CHECK_REJECTS(nn::parse_csv("a,b\n1,\xC3\x28\n", "u.csv"), FormatError,
                  Contains("'u.csv' is not valid UTF-8") && Contains("line 2"));
    const auto p = write_file(scratch("bad_utf8.csv"), "a\n1\n\xFE\n");
    CHECK_REJECTS(nn::read_csv(p.string()), FormatError, Contains("bad_utf8.csv") && Contains("not valid UTF-8"));
    CHECK_REJECTS(nn::parse_csv("", "e.csv"), FormatError, Contains("'e.csv' is empty"));
    CHECK_REJECTS(nn::parse_csv("\n \n\r\n", "b.csv"), FormatError, Contains("only blank lines"));
    CHECK_REJECTS(nn::parse_csv("a,b\n", "h.csv"), FormatError, Contains("no data rows"));
    CHECK_REJECTS(nn::parse_csv("a\n1\n\n2\n", "g.csv"), FormatError, Contains("line 3: a blank line inside the data"));
}

TEST_CASE("hostile CSV: duplicate column names", "[nn][hostile][csv]") {
    CHECK_REJECTS(nn::parse_csv("t,v,v\n1,2,3\n", "d.csv"), FormatError,
                  Contains("columns 2 and 3 have the same name 'v'"));
    CHECK_REJECTS(nn::parse_csv("t,v,v\n1,2,3\n", "d.csv", {.columns = {"v"}}), FormatError,
                  Contains("2 columns named 'v'"));
    // Choosing around the duplicate is fine.
    const auto t = nn::parse_csv("t,v,v\n1,2,3\n", "d.csv", {.columns = {"t"}});
    CHECK(t.columns.at(0) == std::vector<double>{1});
}

TEST_CASE("hostile CSV: a huge field is shortened in the message", "[nn][hostile][csv]") {
    const std::string field(100000, 'z');
    try {
        nn::parse_csv("a\n" + field + "\n", "big.csv");
        FAIL("no exception");
    } catch (const FormatError& e) {
        const std::string msg = e.what();
        CHECK_THAT(msg, Contains("big.csv") && Contains("zzz...") && Contains("not a finite number"));
        CHECK(msg.size() < 300);
    }
    // Shortening never cuts a multi-byte character (the message stays valid UTF-8).
    const std::string wide = "\xC3\xA9" + std::string(60, 'x');  // é then text
    std::string odd = "x" + wide;
    try {
        nn::parse_csv("a\n" + odd + "\n", "w.csv");
        FAIL("no exception");
    } catch (const FormatError& e) {
        CHECK_NOTHROW(nn::utf8_decode(e.what()));
    }
}

TEST_CASE("an archive with no entries round-trips", "[nn][hostile][npz]") {
    // libzip alone writes no file for an empty archive; save_tensors must still leave a valid one.
    const auto path = scratch("nothing.npz");
    fs::remove(path);
    nn::save_tensors({}, path.string());
    REQUIRE(fs::exists(path));
    CHECK(fs::file_size(path) == 22);
    CHECK(nn::load_tensors(path.string()).empty());
    CHECK(nn::load_tensors_from_memory(read_all(path)).empty());
}

TEST_CASE("hostile CSV: a header with very many columns is checked in linear time", "[nn][hostile][csv]") {
    // 100 000 distinct column names and then a repeat: comparing every pair would take billions of
    // string comparisons; the duplicate must still be found and named.
    constexpr std::size_t n = 100000;
    std::string header, row;
    for (std::size_t c = 0; c < n; ++c) {
        header += fmt::format("c{},", c);
        row += "1,";
    }
    row += "1\n";
    CHECK_REJECTS(nn::parse_csv(header + "c7\n" + row, "wide.csv"), FormatError,
                  Contains(fmt::format("columns 8 and {} have the same name 'c7'", n + 1)));
    // Without the repeat, all columns are read.
    const auto t = nn::parse_csv(header + "last\n" + row, "wide.csv");
    CHECK(t.columns.size() == n + 1);
    CHECK(t.header.back() == "last");
}
