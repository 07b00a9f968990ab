// Writes the fuzz targets' seed corpora with the library's own writers: small valid files of each
// kind, plus a few truncated copies. Usage: fuzz_make_corpus DIR (fills DIR/npy, DIR/npz, ...).
// Checkpoints and archives are recompressed (deflate) so the committed seeds stay small.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include <fmt/format.h>
#include <zip.h>

#include <tapegrad/tapegrad.hpp>

using namespace tapegrad;
namespace fs = std::filesystem;

namespace {

fs::path root;

void write(const std::string& target, const std::string& name, const std::string& bytes) {
    const fs::path dir = root / target;
    fs::create_directories(dir);
    std::ofstream(dir / name, std::ios::binary) << bytes;
}

std::string read(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), {}};
}

// Rewrites every entry of an archive deflated (numpy.savez_compressed writes such files too).
void deflate_entries(const fs::path& p) {
    int err = 0;
    zip_t* za = zip_open(p.c_str(), 0, &err);
    if (!za) throw FormatError(fmt::format("cannot reopen {}", p.string()));
    const zip_int64_t n = zip_get_num_entries(za, 0);
    for (zip_int64_t i = 0; i < n; ++i) zip_set_file_compression(za, static_cast<zip_uint64_t>(i), ZIP_CM_DEFLATE, 9);
    if (zip_close(za) != 0) throw FormatError(fmt::format("cannot rewrite {}: {}", p.string(), zip_strerror(za)));
}

// An archive written by save_tensors (optionally deflated), returned as bytes.
std::string archive(const nn::NamedTensors& tensors, bool deflate) {
    const fs::path tmp = root / "tmp.npz";
    nn::save_tensors(tensors, tmp.string());
    if (deflate) deflate_entries(tmp);
    std::string bytes = read(tmp);
    fs::remove(tmp);
    return bytes;
}

// The model and optimizer fuzz_checkpoint restores into: Linear(3, 2) with Adam.
std::string checkpoint(std::size_t steps, const nn::NamedTensors& extras) {
    manual_seed(0);
    nn::Linear model(3, 2);
    nn::Adam opt(model.parameters());
    Generator gen(1);
    for (std::size_t s = 0; s < steps; ++s) {
        Tape tape;
        Tensor loss = sum(model(Tensor::of({{1.0, 2.0, 3.0}})));
        tape.backward(loss);
        opt.step();
        opt.zero_grad();
    }
    const fs::path tmp = root / "tmp.npz";
    nn::save_checkpoint(tmp.string(), model, opt, steps, gen, extras);
    deflate_entries(tmp);
    std::string bytes = read(tmp);
    fs::remove(tmp);
    return bytes;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    root = argv[1];
    fs::create_directories(root);

    // .npy: both dtypes, 0-d, 1-d, 3-d, an empty array, a version 2.0 header, and truncations.
    const std::string m23 = nn::to_npy(Tensor::of({{1.0, -2.0, 3.5}, {0.25, 1e-3, -7.0}}, f32));
    write("npy", "f32_2x3.npy", m23);
    write("npy", "f64_vec.npy", nn::to_npy(Tensor::of({3.0, 1.0, 4.0, 1.0, 5.0}, f64)));
    write("npy", "f64_scalar.npy", nn::to_npy(Tensor::scalar(2.5, f64)));
    write("npy", "f32_2x1x2.npy", nn::to_npy(Tensor::of({{{1.0, 2.0}}, {{3.0, 4.0}}}, f32)));
    write("npy", "f32_empty_0x4.npy", nn::to_npy(zeros({0, 4}, f32)));
    std::string v2 = m23.substr(0, 8);  // magic, then version 2.0 with a 4-byte header length
    v2[6] = '\x02';
    const std::size_t header_len = static_cast<unsigned char>(m23[8]) | (static_cast<unsigned char>(m23[9]) << 8);
    const std::string header = m23.substr(10, header_len);
    for (std::size_t k = 0; k < 4; ++k) v2.push_back(static_cast<char>((header.size() >> (8 * k)) & 0xff));
    write("npy", "f32_2x3_v2.npy", v2 + header + m23.substr(10 + header.size()));
    write("npy", "cut_data.npy", m23.substr(0, m23.size() - 5));
    write("npy", "cut_header.npy", m23.substr(0, 40));

    // .npz: stored and deflated, several entries, no entries, and truncations.
    nn::NamedTensors two = {{"weight", Tensor::of({{0.5, -1.0}, {2.0, 0.0}}, f32)},
                            {"bias", Tensor::of({1.0, 2.0}, f64)}};
    const std::string stored = archive(two, false);
    write("npz", "two_stored.npz", stored);
    write("npz", "two_deflated.npz", archive(two, true));
    write("npz", "one_scalar.npz", archive({{"s", Tensor::scalar(1.0, f64)}}, false));
    write("npz", "no_entries.npz", archive({}, false));
    write("npz", "cut_half.npz", stored.substr(0, stored.size() / 2));
    write("npz", "cut_end.npz", stored.substr(0, stored.size() - 10));

    // Checkpoints of fuzz_checkpoint's model: fresh, after steps, with extras, and truncated.
    const nn::Vocab vocab = nn::Vocab::build("hello, world");
    const std::string trained = checkpoint(2, {{"vocab", vocab.to_tensor()}});
    write("checkpoint", "fresh.npz", checkpoint(0, {}));
    write("checkpoint", "two_steps_vocab.npz", trained);
    write("checkpoint", "cut.npz", trained.substr(0, trained.size() * 2 / 3));

    // Vocabularies: stored tensors (with and without the unknown symbol), texts, a truncation.
    const std::string text = "h\xC3\xA9llo w\xC3\xB6rld \xE2\x82\xAC \xF0\x9F\x99\x82\n";  // héllo wörld € 🙂
    write("vocab", "vocab.npy", nn::to_npy(nn::Vocab::build(text).to_tensor()));
    write("vocab", "vocab_unknown_f32.npy",
          nn::to_npy(nn::Vocab::build("abc", {.add_unknown = true}).to_tensor().to(f32)));
    write("vocab", "text_mixed.txt", text);
    write("vocab", "text_ascii.txt", "The quick brown fox\njumps over the lazy dog.\n");
    write("vocab", "text_cut.txt", text.substr(0, text.size() - 3));  // ends inside a 4-byte character

    // CSV: a header and values, CRLF, no header with ';', quoted fields and a byte-order mark.
    write("csv", "header.csv", "date,temp,load\n2024-01-01,1.5,-2\n2024-01-02,2.25,3e-2\n2024-01-03,0,4\n");
    write("csv", "crlf.csv", "a,b\r\n1,2\r\n3,4\r\n");
    write("csv", "no_header_semicolon.csv", "1;2.5;3\n4;5;-6e3\n");
    write("csv", "quoted_bom.csv", "\xEF\xBB\xBF\"x\", \"y\"\n\"1\", 2\n 3 ,\"4\"\n");
    write("csv", "cut_row.csv", "a,b,c\n1,2,3\n4,5");
    std::printf("seed corpora written under %s\n", root.c_str());
    return 0;
}
