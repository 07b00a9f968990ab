// Character-level text: strict UTF-8 reading with offsets in errors, a code-point vocabulary with a
// stable order and both unknown policies, saving it next to a model, and cutting ids into streams.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

#include <tapegrad/tapegrad.hpp>

#include "test_util.hpp"

using namespace tapegrad;
using namespace tapegrad::test;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {
const ScratchDir scratch("tapegrad_test_text");
// Characters of 1, 2, 3 and 4 bytes in UTF-8.
const std::vector<std::string> kAlphabet = {"a", "b", " ", "\n", "é", "ß", "∑", "中", "€", "𝄞", "😀"};

std::string random_text(Generator& g, std::size_t n) {
    std::string s;
    for (std::size_t i = 0; i < n; ++i) s += kAlphabet[g.randint(kAlphabet.size())];
    return s;
}
}  // namespace

TEST_CASE("multi-byte characters are one symbol each and round trip", "[nn][text]") {
    const std::string text = "héllo ∑";
    const nn::Vocab v = nn::Vocab::build(text);
    // Code points sorted: ' ' 0x20, h 0x68, l 0x6C, o 0x6F, é 0xE9, ∑ 0x2211.
    CHECK(v.symbols() == std::vector<char32_t>{U' ', U'h', U'l', U'o', U'é', U'∑'});
    CHECK_FALSE(v.has_unknown());
    const auto ids = v.encode(text);
    REQUIRE(ids.dimension() == 1);
    REQUIRE(ids.size() == 7);  // characters, not the 10 bytes
    const std::vector<std::int64_t> expect = {1, 4, 2, 2, 3, 0, 5};
    for (std::size_t i = 0; i < expect.size(); ++i) CHECK(ids(i) == expect[i]);
    CHECK(v.decode(ids) == text);
    CHECK(v.decode(std::vector<std::int64_t>{5, 4}) == "∑é");
    CHECK(v.id(U'∑') == 5);
    CHECK(v.symbol(4) == U'é');
}

TEST_CASE("random mixed-width text round trips and the order does not depend on the text's order",
          "[nn][text]") {
    Generator g(11);
    const std::string text = random_text(g, 400);
    const nn::Vocab v = nn::Vocab::build(text);
    CHECK(v.decode(v.encode(text)) == text);
    CHECK(std::is_sorted(v.symbols().begin(), v.symbols().end()));
    // The same characters in another order give the same ids.
    std::vector<char32_t> cps = nn::utf8_decode(text);
    std::reverse(cps.begin(), cps.end());
    const nn::Vocab w = nn::Vocab::build(nn::utf8_encode(cps));
    CHECK(w.symbols() == v.symbols());
    // Every symbol of the alphabet that occurs is there exactly once.
    std::size_t occurring = 0;
    for (const auto& ch : kAlphabet) occurring += text.find(ch) != std::string::npos;
    CHECK(v.size() == occurring);
}

TEST_CASE("unknown characters: an error naming them, or the unknown id", "[nn][text]") {
    const nn::Vocab strict = nn::Vocab::build("abc\nab");
    CHECK_THROWS_AS(strict.id(U'z'), ValueError);
    CHECK_THROWS_WITH(strict.id(U'z'), Contains("'z' (U+007A)") && Contains("Vocab::id"));
    CHECK_THROWS_WITH(strict.encode("ab\nc€"), Contains("Vocab::encode") && Contains("'€' (U+20AC)") &&
                                                   Contains("byte offset 4 (line 2)"));
    CHECK_THROWS_AS(strict.unknown_id(), UsageError);

    const nn::Vocab lenient = nn::Vocab::build("abc", {.add_unknown = true});
    REQUIRE(lenient.size() == 4);
    CHECK(lenient.has_unknown());
    CHECK(lenient.symbols().back() == U'\uFFFD');
    CHECK(lenient.unknown_id() == 3);
    CHECK(lenient.id(U'z') == 3);
    const auto ids = lenient.encode("azb😀");
    REQUIRE(ids.size() == 4);
    CHECK(ids(0) == 0);
    CHECK(ids(1) == 3);
    CHECK(ids(2) == 1);
    CHECK(ids(3) == 3);
    CHECK(lenient.decode(ids) == "a\uFFFDb\uFFFD");
    // A U+FFFD in the text is the unknown symbol itself, not a second copy of it.
    const nn::Vocab with_fffd = nn::Vocab::build("a\uFFFD", {.add_unknown = true});
    CHECK(with_fffd.symbols() == std::vector<char32_t>{U'a', U'\uFFFD'});
}

TEST_CASE("bad ids, bad symbols and empty text are refused", "[nn][text]") {
    const nn::Vocab v = nn::Vocab::build("xy");
    CHECK_THROWS_WITH(v.symbol(2), Contains("Vocab::symbol") && Contains("id 2") && Contains("[0, 2)"));
    CHECK_THROWS_AS(v.symbol(-1), ValueError);
    CHECK_THROWS_WITH(v.decode(std::vector<std::int64_t>{0, 7}), Contains("id 7 at position 1"));
    CHECK_THROWS_AS(v.decode(xt::xarray<std::int64_t>::from_shape({2, 2})), ShapeError);
    CHECK_THROWS_WITH(nn::Vocab::build(""), Contains("Vocab::build") && Contains("empty"));
    CHECK_THROWS_WITH(nn::Vocab({U'a', U'b', U'a'}, false), Contains("duplicates symbol 0"));
    CHECK_THROWS_WITH(nn::Vocab({U'a', char32_t(0xD800)}, false), Contains("U+D800"));
    CHECK_THROWS_AS(nn::Vocab({}, false), ValueError);
}

TEST_CASE("invalid UTF-8 is reported with its byte offset and line", "[nn][text]") {
    // A lone lead byte at the end (offset 5, on line 2).
    CHECK_THROWS_WITH(nn::Vocab::build("ab\ncd\xC3"), Contains("Vocab::build") && Contains("byte offset 5 (line 2)") &&
                                                          Contains("0xC3"));
    // A lead byte followed by a non-continuation byte.
    CHECK_THROWS_WITH(nn::utf8_decode("x\xC3y"), Contains("byte offset 1 (line 1)") && Contains("0x79"));
    // Overlong forms of '/', a surrogate, beyond U+10FFFF, a stray continuation byte.
    CHECK_THROWS_WITH(nn::utf8_decode("\xC0\xAF"), Contains("overlong") && Contains("byte offset 0"));
    CHECK_THROWS_WITH(nn::utf8_decode("ok\xE0\x80\xAF"), Contains("overlong") && Contains("byte offset 2"));
    CHECK_THROWS_WITH(nn::utf8_decode("\n\n\xED\xA0\x80"), Contains("surrogate") && Contains("line 3"));
    CHECK_THROWS_AS(nn::utf8_decode("\xF4\x90\x80\x80"), ValueError);
    CHECK_THROWS_WITH(nn::utf8_decode("a\x80"), Contains("continuation byte") && Contains("byte offset 1"));
    CHECK_THROWS_AS(nn::utf8_decode("\xFF"), ValueError);
    // The largest valid code point and the edges of the 3-byte range still decode.
    CHECK(nn::utf8_decode("\xF4\x8F\xBF\xBF") == std::vector<char32_t>{0x10FFFF});
    CHECK(nn::utf8_decode("\xEF\xBF\xBF\xE0\xA0\x80") == std::vector<char32_t>{0xFFFF, 0x800});
}

TEST_CASE("read_text_file reads UTF-8 and names the file in every error", "[nn][text]") {
    Generator g(5);
    const std::string text = random_text(g, 200);
    const auto good = write_file(scratch("good.txt"), text);
    CHECK(nn::read_text_file(good.string()) == text);

    const auto missing = scratch("does_not_exist.txt");
    fs::remove(missing);
    CHECK_THROWS_AS(nn::read_text_file(missing.string()), FormatError);
    CHECK_THROWS_WITH(nn::read_text_file(missing.string()),
                      Contains("does_not_exist.txt") && Contains("No such file"));
    const auto empty = write_file(scratch("empty.txt"), "");
    CHECK_THROWS_WITH(nn::read_text_file(empty.string()), Contains("empty.txt") && Contains("is empty"));
    const auto bad = write_file(scratch("bad.txt"), "line one\nline two\nbad \xC3 here\n");
    CHECK_THROWS_AS(nn::read_text_file(bad.string()), FormatError);
    CHECK_THROWS_WITH(nn::read_text_file(bad.string()),
                      Contains("bad.txt") && Contains("byte offset 22 (line 3)"));
}

TEST_CASE("a vocabulary saves as a tensor next to the model and loads back", "[nn][text]") {
    Generator g(3);
    const nn::Vocab v = nn::Vocab::build(random_text(g, 100), {.add_unknown = true});
    const Tensor t = v.to_tensor();
    REQUIRE(t.shape() == Shape{v.size() + 1});
    CHECK(t.dtype() == f64);
    CHECK(t.at(v.size()) == 1.0);
    for (std::size_t i = 0; i < v.size(); ++i) CHECK(t.at(i) == static_cast<double>(v.symbols()[i]));

    const auto path = scratch("model_with_vocab.npz");
    nn::save_tensors({{"weight", ones({2, 2})}, {"vocab", t}}, path.string());
    const auto back = nn::load_tensors(path.string());
    REQUIRE(back.size() == 2);
    REQUIRE(back[1].first == "vocab");
    const nn::Vocab w = nn::Vocab::from_tensor(back[1].second);
    CHECK(w.symbols() == v.symbols());
    CHECK(w.has_unknown());
    CHECK_FALSE(nn::Vocab::from_tensor(nn::Vocab::build("ba").to_tensor()).has_unknown());
}

TEST_CASE("a tensor that is not a vocabulary is a FormatError", "[nn][text]") {
    CHECK_THROWS_WITH(nn::Vocab::from_tensor(Tensor::of({97, 98.5, 0}, f64)),
                      Contains("from_tensor") && Contains("element 1 is 98.5"));
    CHECK_THROWS_WITH(nn::Vocab::from_tensor(Tensor::of({97, 98, 97, 0}, f64)), Contains("duplicates"));
    CHECK_THROWS_WITH(nn::Vocab::from_tensor(Tensor::of({97, 2}, f64)), Contains("unknown flag") && Contains("2"));
    CHECK_THROWS_AS(nn::Vocab::from_tensor(Tensor::of({97, 55296, 0}, f64)), FormatError);  // a surrogate
    CHECK_THROWS_AS(nn::Vocab::from_tensor(Tensor::of({-1, 0}, f64)), FormatError);
    CHECK_THROWS_WITH(nn::Vocab::from_tensor(Tensor::of({{97, 0}}, f64)), Contains("[1, 2]"));
    CHECK_THROWS_AS(nn::Vocab::from_tensor(Tensor::of({0}, f64)), FormatError);
    CHECK_THROWS_AS(nn::Vocab::from_tensor(Tensor()), FormatError);
}

TEST_CASE("batchify lays contiguous chunks side by side, time-major", "[nn][text]") {
    Generator g(8);
    const std::size_t N = 23, B = 4, T = N / B;
    xt::xarray<std::int64_t> ids = xt::xarray<std::int64_t>::from_shape({N});
    for (std::size_t i = 0; i < N; ++i) ids(i) = static_cast<std::int64_t>(g.randint(1000));
    const auto out = nn::batchify(ids, B);
    REQUIRE(out.dimension() == 2);
    REQUIRE(out.shape()[0] == T);
    REQUIRE(out.shape()[1] == B);
    for (std::size_t t = 0; t < T; ++t)
        for (std::size_t b = 0; b < B; ++b) CHECK(out(t, b) == ids(b * T + t));
    // B == N: one row; B == 1: the sequence as one column.
    CHECK(nn::batchify(ids, N).shape()[0] == 1);
    CHECK(nn::batchify(ids, 1).shape()[0] == N);
    CHECK_THROWS_WITH(nn::batchify(ids, N + 1), Contains("batchify") && Contains("23 ids") && Contains("24 streams"));
    CHECK_THROWS_AS(nn::batchify(ids, 0), ValueError);
    CHECK_THROWS_AS(nn::batchify(xt::xarray<std::int64_t>::from_shape({2, 3}), 1), ShapeError);
}

TEST_CASE("split_train_val keeps order and takes validation from the end", "[nn][text]") {
    Generator g(9);
    xt::xarray<std::int64_t> ids = xt::xarray<std::int64_t>::from_shape({10});
    for (std::size_t i = 0; i < 10; ++i) ids(i) = static_cast<std::int64_t>(g.randint(50));
    const auto [train, val] = nn::split_train_val(ids, 0.2);
    REQUIRE(train.size() == 8);
    REQUIRE(val.size() == 2);
    for (std::size_t i = 0; i < 8; ++i) CHECK(train(i) == ids(i));
    for (std::size_t i = 0; i < 2; ++i) CHECK(val(i) == ids(8 + i));
    CHECK_THROWS_WITH(nn::split_train_val(ids, 0.01), Contains("split_train_val") && Contains("non-empty"));
    CHECK_THROWS_AS(nn::split_train_val(ids, 0.99), ValueError);
    CHECK_THROWS_AS(nn::split_train_val(ids, 1.0), ValueError);
    CHECK_THROWS_AS(nn::split_train_val(ids, 0.0), ValueError);
}
