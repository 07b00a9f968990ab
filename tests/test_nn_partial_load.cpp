// Partial loading and mixed-dtype archives: a module loads from part of a file (a prefix) or from a
// file that covers part of it (strict = false), with what was skipped reported by name; .npz
// entries of int64, int32, bool and strings are read and written next to float ones, including
// archives laid out byte for byte as numpy.savez writes them; checkpoints carry metadata strings.
#include <catch2/catch.hpp>

#include <cstdint>
#include <filesystem>
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

const ScratchDir scratch("tapegrad_test_partial_load");

// An encoder-decoder pair, as a translation model would hold them.
struct Seq2Seq : nn::Module {
    nn::RNN encoder{{.input_size = 3, .hidden_size = 4}};
    nn::RNN decoder{{.input_size = 3, .hidden_size = 4}};
    nn::Linear head{4, 5};
    Seq2Seq() {
        register_module("encoder", encoder);
        register_module("decoder", decoder);
        register_module("head", head);
    }
    std::string type_name() const override { return "Seq2Seq"; }
};

bool same_values(const nn::Module& a, const nn::Module& b) { return flat(a) == flat(b); }

// ---- .npy blobs as numpy writes them --------------------------------------------------------------

// numpy.save's bytes for a header dict and raw data: version 1.0, the dict padded with spaces to a
// multiple of 64 bytes, then '\n'.
std::string numpy_npy(const std::string& descr, const std::string& shape, const std::string& data) {
    std::string header = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " + shape + ", }";
    header.append((64 - (10 + header.size() + 1) % 64) % 64, ' ');
    header.push_back('\n');
    std::string out("\x93NUMPY\x01\x00", 8);
    put16(out, static_cast<std::uint32_t>(header.size()));
    return out + header + data;
}
template <class T>
std::string raw(const std::vector<T>& v) {
    return {reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T)};
}
// A '<U<n>' element: each code point as 4 little-endian bytes, NUL-padded to n code points.
std::string utf32(const std::u32string& s, std::size_t n) {
    std::string out;
    for (std::size_t k = 0; k < n; ++k) put32(out, k < s.size() ? static_cast<std::uint32_t>(s[k]) : 0u);
    return out;
}
ZipEntry entry(std::string name, std::string data) {
    ZipEntry e;
    e.name = std::move(name);
    e.data = std::move(data);
    return e;
}

// What numpy.savez(path, weight=np.array([[0.5, -1.0]]), lengths=np.array([3, 1]),
// mask=np.array([True, False]), ids=np.array([7], dtype=np.int32), words=np.array(['ab', 'héllo']),
// raw=np.array([b'x\0y', b'']), config=np.array('{"hidden": 4}')) writes: one stored entry per array.
std::string numpy_archive() {
    return make_zip({
        entry("weight.npy", numpy_npy("<f8", "(1, 2)", raw<double>({0.5, -1.0}))),
        entry("lengths.npy", numpy_npy("<i8", "(2,)", raw<std::int64_t>({3, 1}))),
        entry("mask.npy", numpy_npy("|b1", "(2,)", std::string("\x01\x00", 2))),
        entry("ids.npy", numpy_npy("<i4", "(1,)", raw<std::int32_t>({7}))),
        entry("words.npy", numpy_npy("<U5", "(2,)", utf32(U"ab", 5) + utf32(U"h\u00e9llo", 5))),
        entry("raw.npy", numpy_npy("|S3", "(2,)", std::string("x\0y\0\0\0", 6))),
        entry("config.npy", numpy_npy("<U13", "()", utf32(U"{\"hidden\": 4}", 13))),
    });
}

}  // namespace

// ---- prefix and non-strict loading ------------------------------------------------------------------

TEST_CASE("a prefix loads the encoder of a saved seq2seq into an encoder of its own", "[nn][partial_load]") {
    manual_seed(1);
    Seq2Seq trained;
    const std::string path = scratch("seq2seq.npz").string();
    nn::save(trained, path);
    manual_seed(2);
    // Load the encoder of a saved seq2seq model into an encoder of its own.
    nn::RNN encoder({.input_size = 3, .hidden_size = 4});
    const nn::LoadReport report = nn::load(encoder, path, {.prefix = "encoder."});
    CHECK(same_values(encoder, trained.encoder));
    CHECK(report.loaded == std::vector<std::string>{"weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"});
    CHECK(report.missing_keys.empty());
    CHECK(report.unexpected_keys.empty());  // decoder.* and head.* are outside the prefix
    // The same encoder inside another model, through the submodule.
    manual_seed(3);
    Seq2Seq fresh;
    const std::vector<double> decoder_before = flat(fresh.decoder);
    nn::load(fresh.encoder, path, {.prefix = "encoder."});
    CHECK(same_values(fresh.encoder, trained.encoder));
    CHECK(flat(fresh.decoder) == decoder_before);
    // Strict with a prefix: every parameter must be there, and everything under the prefix must fit.
    nn::RNN two_layers({.input_size = 3, .hidden_size = 4, .num_layers = 2});
    CHECK_REJECTS(nn::load(two_layers, path, {.prefix = "encoder."}), ValueError,
                  Contains(path) && Contains("missing 'weight_ih_l1' ([4, 4] float32): no entry 'encoder.weight_ih_l1'"));
    nn::Linear head(4, 5);
    CHECK_REJECTS(nn::load(head, path, {.prefix = "encoder."}), ValueError,
                  Contains("unexpected 'encoder.weight_ih_l0' (float32 [4, 3])"));
}

TEST_CASE("a mistyped prefix is an error listing the prefixes there are", "[nn][partial_load]") {
    Seq2Seq trained;
    const std::string path = scratch("prefix.npz").string();
    nn::save(trained, path);
    nn::RNN encoder({.input_size = 3, .hidden_size = 4});
    const std::vector<double> before = flat(encoder);
    for (bool strict : {true, false}) {
        INFO("strict " << strict);
        CHECK_REJECTS(nn::load(encoder, path, {.strict = strict, .prefix = "encodr."}), ValueError,
                      Contains("no entry starts with the prefix 'encodr.'") &&
                          Contains("'encoder.', 'decoder.', 'head.'"));
    }
    CHECK(flat(encoder) == before);
}

TEST_CASE("strict = false loads what fits and reports the rest by name", "[nn][partial_load]") {
    manual_seed(4);
    nn::RNN encoder({.input_size = 3, .hidden_size = 4});
    const std::string path = scratch("encoder_only.npz").string();
    // A file holding the encoder under its seq2seq names, and an entry the model does not have.
    nn::NamedTensors entries;
    for (auto& [name, t] : nn::state_dict(encoder)) entries.emplace_back("encoder." + name, t);
    entries.emplace_back("encoder_norm.weight", ones({4}));
    nn::save_tensors(entries, path);

    manual_seed(5);
    Seq2Seq model;
    const std::vector<double> decoder_before = flat(model.decoder), head_before = flat(model.head);
    // Strict (the default): every missing and unexpected entry is listed, and nothing changes.
    CHECK_REJECTS(nn::load(model, path), ValueError,
                  Contains("7 problem(s)") && Contains("missing 'decoder.weight_ih_l0'") &&
                      Contains("missing 'head.bias'") && Contains("unexpected 'encoder_norm.weight' (float32 [4])"));
    CHECK_FALSE(same_values(model.encoder, encoder));
    // Not strict: what fits is loaded; the rest is reported, as PyTorch's missing_keys and unexpected_keys.
    const nn::LoadReport r = nn::load(model, path, {.strict = false});
    CHECK(same_values(model.encoder, encoder));
    CHECK(flat(model.decoder) == decoder_before);
    CHECK(flat(model.head) == head_before);
    CHECK(r.loaded.size() == 4);
    CHECK(r.missing_keys == std::vector<std::string>{"decoder.weight_ih_l0", "decoder.weight_hh_l0",
                                                     "decoder.bias_ih_l0", "decoder.bias_hh_l0", "head.weight",
                                                     "head.bias"});
    CHECK(r.unexpected_keys == std::vector<std::string>{"encoder_norm.weight"});
    CHECK(nn::to_string(r) ==
          "loaded 4 parameter(s); missing: 'decoder.weight_ih_l0', 'decoder.weight_hh_l0', 'decoder.bias_ih_l0', "
          "'decoder.bias_hh_l0', 'head.weight', 'head.bias'; unexpected: 'encoder_norm.weight'");
}

TEST_CASE("not strict, shapes and dtypes are still checked, and loading nothing is an error", "[nn][partial_load]") {
    nn::Linear lin(3, 2);
    const std::vector<double> before = flat(lin);
    nn::NamedTensors wrong = {{"weight", zeros({2, 4})}, {"bias", zeros({2})}};
    CHECK_REJECTS(nn::load_state_dict(lin, wrong, {.strict = false}), ValueError,
                  Contains("1 problem(s)") && Contains("'weight' has shape [2, 4] but the model's is [2, 3]"));
    nn::NamedTensors typed = {{"bias", zeros({2}, f64)}};
    CHECK_REJECTS(nn::load_state_dict(lin, typed, {.strict = false}), ValueError,
                  Contains("'bias' is float64 but the model's is float32"));
    nn::NamedTensors unrelated = {{"embedding.weight", zeros({5, 3})}};
    CHECK_REJECTS(nn::load_state_dict(lin, unrelated, {.strict = false}), ValueError,
                  Contains("nothing to load") && Contains("'weight', 'bias'") && Contains("'embedding.weight'"));
    CHECK(flat(lin) == before);
    // Only the bias: the weight keeps its values.
    const nn::LoadReport r = nn::load_state_dict(lin, {{"bias", ones({2})}}, {.strict = false});
    CHECK(r.loaded == std::vector<std::string>{"bias"});
    CHECK(r.missing_keys == std::vector<std::string>{"weight"});
    CHECK(lin.bias.at(1) == 1.0);
    CHECK(lin.weight.at(0) == before[0]);
}

// ---- arrays of every type -----------------------------------------------------------------------------

TEST_CASE("int64, int32, bool and string arrays round-trip next to float ones", "[nn][partial_load][npz]") {
    const Tensor w = Tensor::of({{1.5, -2.0}}, f64);
    const xt::xarray<std::int64_t> lengths = {5, 3, -1, std::int64_t{1} << 40};
    const xt::xarray<std::int32_t> ids = {{1, 2}, {3, -4}};
    const xt::xarray<bool> mask = {true, false, true};
    nn::StringArray words{{2, 2}, {"ab", "", "h\xc3\xa9llo", "\xe6\x97\xa5\xf0\x9f\x98\x80"}};  // é, 日, 😀
    nn::StringArray blobs{{3}, {std::string("x\0y", 3), "", "\xff"}, true};
    const std::string path = scratch("mixed.npz").string();
    nn::save_arrays({{"w", w}, {"lengths", lengths}, {"ids", ids}, {"mask", mask}, {"words", words},
                     {"blobs", blobs}, {"config", "{\"hidden\": 4}"}},
                    path);
    const nn::NamedArrays back = nn::load_arrays(path);
    REQUIRE(back.size() == 7);
    CHECK(back[0].second.type() == nn::NpyType::float64);
    CHECK(back[1].second.type() == nn::NpyType::int64);
    CHECK(back[2].second.type() == nn::NpyType::int32);
    CHECK(back[3].second.type() == nn::NpyType::boolean);
    CHECK(back[4].second.type() == nn::NpyType::unicode);
    CHECK(back[5].second.type() == nn::NpyType::bytes);
    CHECK(back[6].second.describe() == "str []");

    const nn::NpzArchive npz = nn::NpzArchive::read(path);
    CHECK(npz.tensor("w").at(1) == -2.0);
    CHECK((npz.int64("lengths") == lengths));
    CHECK((std::get<xt::xarray<std::int32_t>>(npz.at("ids").value()) == ids));
    CHECK((npz.int64("ids") == xt::xarray<std::int64_t>{{1, 2}, {3, -4}}));  // widened
    CHECK((std::get<xt::xarray<bool>>(npz.at("mask").value()) == mask));
    CHECK(npz.strings("words").shape == Shape{2, 2});
    CHECK(npz.strings("words").values == words.values);
    CHECK(npz.strings("blobs").values == blobs.values);
    CHECK(npz.string("config") == "{\"hidden\": 4}");
    // The float API takes the float entries and leaves the others out.
    const nn::NamedTensors floats = nn::load_tensors(path);
    REQUIRE(floats.size() == 1);
    CHECK(floats[0].first == "w");
    CHECK(npz.tensors().size() == 1);
    // The bytes are numpy's: the same header numpy writes for each type.
    const std::string bytes = read_all(path);
    CHECK_THAT(bytes, Contains("{'descr': '<i8', 'fortran_order': False, 'shape': (4,), }"));
    CHECK_THAT(bytes, Contains("{'descr': '<i4', 'fortran_order': False, 'shape': (2, 2), }"));
    CHECK_THAT(bytes, Contains("{'descr': '|b1', 'fortran_order': False, 'shape': (3,), }"));
    CHECK_THAT(bytes, Contains("{'descr': '<U5', 'fortran_order': False, 'shape': (2, 2), }"));
    CHECK_THAT(bytes, Contains("{'descr': '|S3', 'fortran_order': False, 'shape': (3,), }"));
    CHECK_THAT(bytes, Contains("{'descr': '<U13', 'fortran_order': False, 'shape': (), }"));
    // One array alone, as numpy.save writes it.
    CHECK(nn::to_npy(lengths) == numpy_npy("<i8", "(4,)", raw<std::int64_t>({5, 3, -1, std::int64_t{1} << 40})));
    CHECK(nn::array_from_npy(nn::to_npy(mask)).describe() == "bool [3]");
}

TEST_CASE("an archive written by numpy.savez with int, bool and str entries loads", "[nn][partial_load][npz]") {
    const std::string path = write_file(scratch("numpy.npz"), numpy_archive()).string();
    // A PyTorch reference file with int64 lengths and a configuration string next to the weights.
    const nn::NpzArchive fx = nn::NpzArchive::read(path);
    const Tensor& weight = fx.tensor("weight");
    const xt::xarray<std::int64_t> lengths = fx.int64("lengths");
    const std::string config = fx.string("config");
    CHECK(weight.shape() == Shape{1, 2});
    CHECK(weight.at(1) == -1.0);
    CHECK((lengths == xt::xarray<std::int64_t>{3, 1}));
    CHECK(config == "{\"hidden\": 4}");
    CHECK((fx.int64("mask") == xt::xarray<std::int64_t>{1, 0}));
    CHECK((fx.int64("ids") == xt::xarray<std::int64_t>{7}));
    CHECK(fx.strings("words").values == std::vector<std::string>{"ab", "h\xc3\xa9llo"});
    // Trailing NULs are numpy's padding; a NUL inside a value is kept, as numpy keeps it.
    CHECK(fx.strings("raw").values == std::vector<std::string>{std::string("x\0y", 3), ""});
    CHECK(nn::load_tensors(path).size() == 1);
    // Writing the same arrays back gives numpy's bytes, entry for entry.
    const std::string again = scratch("numpy_again.npz").string();
    nn::save_arrays(fx.entries(), again);
    const nn::NamedArrays ours = nn::load_arrays(again);
    REQUIRE(ours.size() == fx.entries().size());
    const std::vector<std::string> numpy_entries = {
        numpy_npy("<f8", "(1, 2)", raw<double>({0.5, -1.0})),
        numpy_npy("<i8", "(2,)", raw<std::int64_t>({3, 1})),
        numpy_npy("|b1", "(2,)", std::string("\x01\x00", 2)),
        numpy_npy("<i4", "(1,)", raw<std::int32_t>({7})),
        numpy_npy("<U5", "(2,)", utf32(U"ab", 5) + utf32(U"h\u00e9llo", 5)),
        numpy_npy("|S3", "(2,)", std::string("x\0y\0\0\0", 6)),
        numpy_npy("<U13", "()", utf32(U"{\"hidden\": 4}", 13))};
    for (std::size_t i = 0; i < ours.size(); ++i) {
        INFO(ours[i].first);
        CHECK(nn::to_npy(ours[i].second) == numpy_entries[i]);
    }
}

TEST_CASE("loading a module from a file with non-float entries", "[nn][partial_load][npz]") {
    manual_seed(6);
    nn::Linear lin(2, 1);
    const std::string path = scratch("with_lengths.npz").string();
    nn::save_arrays({{"weight", Tensor::of({{0.25, 0.5}})}, {"bias", Tensor::of({-1.0})},
                     {"lengths", xt::xarray<std::int64_t>{3, 1}}},
                    path);
    CHECK_REJECTS(nn::load(lin, path), ValueError, Contains("unexpected 'lengths' (int64 [2])"));
    const nn::LoadReport r = nn::load(lin, path, {.strict = false});
    CHECK(r.unexpected_keys == std::vector<std::string>{"lengths"});
    CHECK(lin.weight.at(1) == 0.5);
    // A non-float entry under a parameter's name never fits it.
    nn::save_arrays({{"weight", xt::xarray<std::int64_t>{{1, 2}}}, {"bias", Tensor::of({-1.0})}}, path);
    CHECK_REJECTS(nn::load(lin, path, {.strict = false}), ValueError,
                  Contains("'weight' is int64 [1, 2], which cannot be a parameter (the model's is float32 [1, 2])"));
    CHECK(lin.weight.at(1) == 0.5);
}

// ---- checkpoint metadata ----------------------------------------------------------------------------

TEST_CASE("a checkpoint keeps its metadata strings, readable before the model exists", "[nn][partial_load][checkpoint]") {
    manual_seed(7);
    nn::RNN rnn({.input_size = 3, .hidden_size = 4});
    nn::Adam opt(rnn.parameters());
    Generator gen(8);
    const std::string path = scratch("ckpt_meta.npz").string();
    // The configuration stored as data, next to the weights.
    const nn::Metadata config = {{"model", R"({"input_size": 3, "hidden_size": 4})"}, {"corpus", "fortunes"}};
    nn::save_checkpoint(path, rnn, opt, 12, gen, {}, config);
    // Read the configuration first, then build the model it describes and load into it.
    const nn::Metadata meta = nn::load_checkpoint_metadata(path);
    CHECK(meta == config);
    nn::RNN restored({.input_size = 3, .hidden_size = 4});
    nn::Adam restored_opt(restored.parameters());
    Generator restored_gen(9);
    const nn::CheckpointInfo info = nn::load_checkpoint(path, restored, restored_opt, restored_gen);
    CHECK(info.step == 12);
    CHECK(info.metadata == config);
    CHECK(same_values(restored, rnn));
    // numpy.load sees each as a 0-d str array.
    const nn::NpzArchive npz = nn::NpzArchive::read(path);
    CHECK(npz.at("checkpoint.meta.model").describe() == "str []");
    // Written atomically like every save: nothing but the file itself is left in the folder.
    std::size_t files = 0;
    for (auto& e : fs::directory_iterator(fs::path(path).parent_path()))
        if (e.path().filename().string().rfind("ckpt_meta.npz", 0) == 0) ++files;
    CHECK(files == 1);
    // Entries read by the float API carry no metadata, and still restore.
    CHECK(nn::restore_checkpoint(nn::load_tensors(path), path, restored, restored_opt, restored_gen).metadata.empty());
    // A checkpoint without metadata has an empty map; a plain state dict is not a checkpoint.
    nn::save_checkpoint(path, rnn, opt, 1, gen);
    CHECK(nn::load_checkpoint_metadata(path).empty());
    nn::save(rnn, path);
    CHECK_REJECTS(nn::load_checkpoint_metadata(path), FormatError, Contains(path) && Contains("not a checkpoint"));
}

TEST_CASE("bad metadata is refused when saving and when loading", "[nn][partial_load][checkpoint]") {
    nn::Linear lin(2, 1);
    nn::SGD opt(lin.parameters(), {.lr = 0.1});
    Generator gen(1);
    const std::string path = scratch("bad_meta.npz").string();
    fs::remove(path);
    CHECK_REJECTS(nn::save_checkpoint(path, lin, opt, 0, gen, {}, {{"", "x"}}), ValueError,
                  Contains("a metadata key is empty"));
    CHECK_REJECTS(nn::save_checkpoint(path, lin, opt, 0, gen, {}, {{"k", "\xff"}}), ValueError,
                  Contains("'checkpoint.meta.k'") && Contains("not text"));
    CHECK_REJECTS(nn::save_checkpoint(path, lin, opt, 0, gen, {}, {{"k", std::string("a\0", 2)}}), ValueError,
                  Contains("'checkpoint.meta.k'") && Contains("ends with a NUL character"));
    CHECK_FALSE(fs::exists(path));  // a refused save writes nothing
    nn::save_checkpoint(path, lin, opt, 0, gen, {}, {{"k", "v"}});
    nn::NamedArrays entries = nn::load_arrays(path);
    for (auto& [name, a] : entries)
        if (name == "checkpoint.meta.k") a = xt::xarray<std::int64_t>{1};
    CHECK_REJECTS(nn::restore_checkpoint(entries, "m.npz", lin, opt, gen), FormatError,
                  Contains("m.npz") && Contains("'checkpoint.meta.k' is int64 [1], expected one string"));
    // An int64 step counter, as another tool may write it, is read; an int64 learning rate is not.
    for (auto& [name, a] : entries)
        if (name == "checkpoint.meta.k") a = "v";
        else if (name == "checkpoint.step") a = xt::xarray<std::int64_t>(std::int64_t{41});
    CHECK(nn::restore_checkpoint(entries, "m.npz", lin, opt, gen).step == 41);
    for (auto& [name, a] : entries)
        if (name == "checkpoint.lr") a = xt::xarray<std::int64_t>(std::int64_t{1});
    CHECK_REJECTS(nn::restore_checkpoint(entries, "m.npz", lin, opt, gen), FormatError,
                  Contains("'checkpoint.lr' is int64 [], expected a float32 or float64 array"));
}

// ---- hostile inputs ---------------------------------------------------------------------------------

TEST_CASE("hostile .npz: non-float entries that lie or are not supported", "[nn][partial_load][hostile]") {
    auto archive_with = [&](const std::string& file, const std::string& npy) {
        return write_file(scratch(file), make_zip({entry("weight.npy", numpy_npy("<f4", "(1,)", raw<float>({1}))),
                                                   entry("bad.npy", npy)}))
            .string();
    };
    // A string entry cut short: the float API refuses the damaged file too, naming the entry.
    const std::string cut = archive_with("cut_str.npz", numpy_npy("<U5", "(2,)", utf32(U"ab", 5) + utf32(U"cd", 4)));
    for (auto load : {+[](const std::string& p) { (void)nn::load_arrays(p); },
                      +[](const std::string& p) { (void)nn::load_tensors(p); }}) {
        CHECK_REJECTS(load(cut), FormatError,
                      Contains("cut_str.npz: entry 'bad.npy'") &&
                          Contains("truncated data: shape [2] needs 40 bytes but only 36 follow the header"));
    }
    struct Case {
        std::string descr, shape, data, message;
    };
    const std::vector<Case> cases = {
        {"<c16", "(1,)", std::string(16, '\0'), "dtype '<c16' is not supported (supported: float32 '<f4'"},
        {">i8", "(1,)", raw<std::int64_t>({1}), "dtype '>i8' is big-endian"},
        {"<U0", "(1,)", "", "dtype '<U0' does not give a string length"},
        {"<Uxyz", "(1,)", "", "dtype '<Uxyz' does not give a string length"},
        {"|b1", "(3,)", std::string("\x01\x02\x00", 3), "bool element 1 is 2, not 0 or 1"},
        {"<U2", "(1,)", utf32(U"a", 1) + std::string("\x00\xd8\x00\x00", 4),
         "string element 0 holds 0xd800 at character 1, which is not a Unicode code point"},
        {"<U1", "(1,)", std::string("\x00\x00\x11\x00", 4), "holds 0x110000"},
        {"<i8", "(2,)", raw<std::int64_t>({1, 2}) + "x", "17 bytes follow the header but shape [2] needs 16"},
        {"|S4", "(4294967296, 4294967296)", "", "absurdly large"},
    };
    for (const Case& c : cases) {
        INFO(c.descr << " " << c.shape);
        const std::string p = archive_with("hostile.npz", numpy_npy(c.descr, c.shape, c.data));
        CHECK_REJECTS(nn::load_arrays(p), FormatError, Contains("entry 'bad.npy'") && Contains(c.message));
        CHECK_REJECTS(nn::NpzArchive::read(p), FormatError, Contains(c.message));
    }
    // from_npy returns a Tensor: a valid int64 array is refused by name, with the function to use.
    CHECK_REJECTS(nn::from_npy(nn::to_npy(xt::xarray<std::int64_t>{1}), "ids.npy"), FormatError,
                  Contains("ids.npy") && Contains("dtype '<i8' is not supported by from_npy") &&
                      Contains("read int64 arrays with array_from_npy or load_arrays"));
}

TEST_CASE("asking for the wrong type or a missing entry names the file, the entry and what it is",
          "[nn][partial_load][npz]") {
    const nn::NpzArchive fx = nn::NpzArchive::from_memory(numpy_archive(), "ref.npz");
    CHECK_REJECTS(fx.tensor("lengths"), DTypeError,
                  Contains("ref.npz: entry 'lengths' is int64 [2], not a float32 or float64 array"));
    CHECK_REJECTS(fx.int64("weight"), DTypeError,
                  Contains("ref.npz: entry 'weight' is float64 [1, 2], not an integer array"));
    CHECK_REJECTS(fx.string("lengths"), DTypeError, Contains("entry 'lengths' is int64 [2], not a string array"));
    CHECK_REJECTS(fx.string("words"), ShapeError, Contains("entry 'words' is str [2], not a single string"));
    CHECK_REJECTS(fx.at("length"), ValueError,
                  Contains("ref.npz: no entry 'length'") && Contains("'weight', 'lengths', 'mask'"));
    CHECK_REJECTS(nn::NpyArray(nn::StringArray{{2, 2}, {"a"}}), ValueError,
                  Contains("1 value(s) for shape [2, 2], which has 4 element(s)"));
    CHECK_REJECTS(nn::NpzArchive(nn::NamedArrays{{"a", "x"}, {"a", "y"}}, "dup"), ValueError,
                  Contains("entry 'a' appears twice"));
    CHECK_REJECTS(nn::save_arrays({{"t", Tensor()}}, scratch("undef.npz").string()), ValueError,
                  Contains("entry 't' is an undefined tensor"));
}
