// Hardening of files and options: reading is bounded (non-regular files are refused, so /dev/zero
// or a FIFO cannot fill memory or block), a save that succeeds loads (entry names the archive
// cannot store are refused at save time), a legal file name near the file system's limit saves,
// saving through a symbolic link updates its target, and every optimizer option outside its range
// (NaN and infinities included) is refused with the range in the message.
#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <limits>
#include <string>

#include <tapegrad/tapegrad.hpp>

#include "error_matchers.hpp"
#include "test_util.hpp"

using namespace tapegrad;
namespace fs = std::filesystem;

namespace {
const test::ScratchDir scratch("tapegrad_test_hardening_files");
constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

nn::NamedTensors one_entry(const std::string& name) { return {{name, Tensor::of({1.0, 2.0, 3.0})}}; }

// The values of the single entry of the archive at p.
std::vector<double> reload(const fs::path& p) {
    const auto back = nn::load_tensors(p.string());
    REQUIRE(back.size() == 1);
    return test::values(back[0].second);
}
}  // namespace

TEST_CASE("hardening: text and CSV readers refuse files that are not regular files", "[hardening][files]") {
    // /dev/zero never ends: read to its end, it would fill memory.
    REQUIRE_THROWS_MATCHES(nn::read_text_file("/dev/zero"), FormatError,
                           WhatContains({"read_text_file", "'/dev/zero'", "character device", "not a regular file"}));
    REQUIRE_THROWS_MATCHES(nn::read_csv("/dev/zero"), FormatError,
                           WhatContains({"read_csv", "'/dev/zero'", "character device"}));
    const fs::path dir = scratch("a_directory");
    fs::create_directories(dir);
    REQUIRE_THROWS_MATCHES(nn::read_text_file(dir.string()), FormatError,
                           WhatContains({"read_text_file", "a directory", "not a regular file"}));
    // A FIFO with no writer: a plain open() would wait for one forever.
    const fs::path fifo = scratch("a_fifo");
    fs::remove(fifo);
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    REQUIRE_THROWS_MATCHES(nn::read_text_file(fifo.string()), FormatError,
                           WhatContains({"read_text_file", "a pipe (FIFO)", "not a regular file"}));
    REQUIRE_THROWS_MATCHES(nn::read_csv(fifo.string()), FormatError, WhatContains({"read_csv", "pipe"}));
    REQUIRE_THROWS_MATCHES(nn::load_tensors(fifo.string()), FormatError,
                           WhatContains({"load_tensors", "not a regular file", "pipe"}));
    REQUIRE_THROWS_MATCHES(nn::load_tensors("/dev/zero"), FormatError,
                           WhatContains({"load_tensors", "/dev/zero", "not a regular file", "character device"}));
    fs::remove(fifo);
}

TEST_CASE("hardening: the text reader returns exactly the file, and validates it", "[hardening][files]") {
    const std::string text = "line one\nzweite Zeile \xC3\xA9\n";
    const fs::path p = test::write_file(scratch("ok.txt"), text);
    CHECK(nn::read_text_file(p.string()) == text);
    test::write_file(p, "ab\n\xC3\x28");
    REQUIRE_THROWS_MATCHES(nn::read_text_file(p.string()), FormatError,
                           WhatContains({"read_text_file", "not valid UTF-8", "byte offset 3", "line 2"}));
    CHECK_NOTHROW(nn::utf8_validate("plain \xE2\x82\xAC"));
    REQUIRE_THROWS_MATCHES(nn::utf8_validate("a\xFF", "my_op"), ValueError,
                           WhatContains({"my_op", "invalid UTF-8", "byte offset 1", "0xFF"}));
}

TEST_CASE("hardening: CSV lines are read one at a time, with CRLF and trailing blank lines", "[hardening][files]") {
    const auto t = nn::parse_csv("a,b\r\n1,2\r\n3,4\r\n\r\n  \r\n\n", "crlf.csv");
    REQUIRE(t.header == std::vector<std::string>{"a", "b"});
    REQUIRE(t.columns.size() == 2);
    CHECK(t.columns[0] == std::vector<double>{1, 3});
    CHECK(t.columns[1] == std::vector<double>{2, 4});
    // No header and no final newline.
    const auto u = nn::parse_csv("5\n6", "plain.csv", {.has_header = false});
    CHECK(u.columns[0] == std::vector<double>{5, 6});
    // Line numbers in errors still count every line.
    REQUIRE_THROWS_MATCHES(nn::parse_csv("a\r\n1\r\n\r\n2\r\n", "gap.csv"), FormatError,
                           WhatContains({"'gap.csv' line 3", "blank line inside the data"}));
    REQUIRE_THROWS_MATCHES(nn::parse_csv("a\n1\nx\n", "bad.csv"), FormatError,
                           WhatContains({"'bad.csv' line 3", "'x'", "not a finite number"}));
    REQUIRE_THROWS_MATCHES(nn::parse_csv(" \r\n\r\n", "blank.csv"), FormatError, WhatContains({"only blank lines"}));
    REQUIRE_THROWS_MATCHES(nn::parse_csv("a\n", "head.csv"), FormatError, WhatContains({"header but no data rows"}));
}

TEST_CASE("hardening: entry names the archive cannot store are refused at save time", "[hardening][files]") {
    const fs::path p = scratch("names.npz");
    fs::remove(p);  // left by an earlier run: the refused saves below must not create it
    std::string with_nul = "w";
    with_nul += '\0';
    with_nul += "x";
    REQUIRE_THROWS_MATCHES(nn::save_tensors(one_entry(with_nul), p.string()), ValueError,
                           WhatContains({"save_tensors", "NUL byte at offset 1"}));
    REQUIRE_THROWS_MATCHES(nn::save_tensors(one_entry(std::string(65532, 'n')), p.string()), ValueError,
                           WhatContains({"save_tensors", "65532 bytes", "at most 65531"}));
    REQUIRE_THROWS_MATCHES(nn::save_tensors(one_entry("bad\xC3"), p.string()), ValueError,
                           WhatContains({"save_tensors", "not valid UTF-8"}));
    CHECK_FALSE(fs::exists(p));
    // The longest name allowed, and a UTF-8 name, save and load unchanged.
    const std::string longest(65531, 'n');
    nn::save_tensors(one_entry(longest), p.string());
    auto back = nn::load_tensors(p.string());
    REQUIRE(back.size() == 1);
    CHECK(back[0].first == longest);
    nn::save_tensors(one_entry("gewicht_\xC3\xBC"), p.string());
    back = nn::load_tensors(p.string());
    CHECK(back[0].first == "gewicht_\xC3\xBC");
}

TEST_CASE("hardening: a file name at the file system's limit saves and loads", "[hardening][files]") {
    const fs::path dir = scratch("long_names");
    fs::create_directories(dir);
    long name_max = ::pathconf(dir.c_str(), _PC_NAME_MAX);
    if (name_max <= 0 || name_max > 4096) name_max = 255;
    for (std::size_t len : {static_cast<std::size_t>(name_max), static_cast<std::size_t>(name_max) - 20}) {
        const std::string name = std::string(len - 4, 'a') + ".npz";
        const fs::path p = dir / name;
        nn::save_tensors(one_entry("w"), p.string());
        CHECK(reload(p) == std::vector<double>{1, 2, 3});
        nn::save_tensors(one_entry("w"), p.string());  // again: over the existing file
        // Nothing left behind but the file itself.
        std::size_t files = 0;
        for (const auto& e : fs::directory_iterator(dir)) files += e.path().filename() == name ? 0 : 1;
        CHECK(files == 0);
        fs::remove(p);
    }
    // Two long names that share their first bytes stay apart.
    const std::string stem(static_cast<std::size_t>(name_max) - 10, 'b');
    const fs::path p1 = dir / (stem + "_one.npz"), p2 = dir / (stem + "_two.npz");
    nn::save_tensors(one_entry("w"), p1.string());
    nn::save_tensors({{"w", Tensor::of({4.0})}}, p2.string());
    CHECK(reload(p1) == std::vector<double>{1, 2, 3});
    CHECK(reload(p2) == std::vector<double>{4});
    fs::remove(p1);
    fs::remove(p2);
}

TEST_CASE("hardening: saving through a symbolic link updates its target", "[hardening][files]") {
    const fs::path dir = scratch("links");
    fs::remove_all(dir);
    fs::create_directories(dir / "real");
    const fs::path target = dir / "real" / "model.npz";
    const fs::path link = dir / "latest.npz";
    nn::save_tensors({{"w", Tensor::of({0.0})}}, target.string());
    fs::create_symlink("real/model.npz", link);  // relative, as `ln -s` users write them
    nn::save_tensors(one_entry("w"), link.string());
    CHECK(fs::is_symlink(fs::symlink_status(link)));
    CHECK(reload(target) == std::vector<double>{1, 2, 3});
    CHECK(reload(link) == std::vector<double>{1, 2, 3});
    // A chain of links, the last one dangling: the save creates the file it names.
    const fs::path chain = dir / "chain.npz";
    fs::create_symlink(link.filename(), chain);
    fs::remove(target);
    nn::save_tensors({{"w", Tensor::of({7.0})}}, chain.string());
    CHECK(fs::is_symlink(fs::symlink_status(chain)));
    CHECK(fs::is_symlink(fs::symlink_status(link)));
    CHECK(reload(target) == std::vector<double>{7});
    // A loop of links is refused with a clear error, and creates nothing.
    const fs::path a = dir / "loop_a.npz", b = dir / "loop_b.npz";
    fs::create_symlink(b.filename(), a);
    fs::create_symlink(a.filename(), b);
    REQUIRE_THROWS_MATCHES(nn::save_tensors(one_entry("w"), a.string()), FormatError,
                           WhatContains({"save_tensors", "symbolic links", "loop"}));
    fs::remove_all(dir);
}

TEST_CASE("hardening: optimizer options outside their range are refused, infinities too", "[hardening][optim]") {
    Tensor w = Tensor::of({1.0, 2.0}, DType::f64, true);
    const std::vector<Tensor> ps{w};
    REQUIRE_THROWS_MATCHES(nn::Adam(ps, {.eps = kInf}), ValueError, WhatContains({"Adam", "eps > 0", "finite"}));
    REQUIRE_THROWS_MATCHES(nn::Adam(ps, {.weight_decay = kInf}), ValueError,
                           WhatContains({"Adam", "weight_decay >= 0", "finite", "inf"}));
    REQUIRE_THROWS_MATCHES(nn::Adam(ps, {.beta1 = kNaN}), ValueError, WhatContains({"Adam", "0 <= beta1, beta2 < 1"}));
    REQUIRE_THROWS_MATCHES(nn::Adam(ps, {.beta2 = 1.0}), ValueError, WhatContains({"Adam", "beta2 < 1"}));
    REQUIRE_THROWS_MATCHES(nn::Adagrad(ps, {.lr_decay = kInf}), ValueError,
                           WhatContains({"Adagrad", "lr_decay", "finite and >= 0"}));
    REQUIRE_THROWS_MATCHES(nn::Adagrad(ps, {.eps = kInf}), ValueError, WhatContains({"Adagrad", "eps > 0 and finite", "inf"}));
    REQUIRE_THROWS_MATCHES(nn::RMSprop(ps, {.momentum = kInf}), ValueError,
                           WhatContains({"RMSprop", "momentum >= 0", "finite"}));
    REQUIRE_THROWS_MATCHES(nn::RMSprop(ps, {.alpha = 1.5}), ValueError, WhatContains({"RMSprop", "0 <= alpha <= 1"}));
    REQUIRE_THROWS_MATCHES(nn::SGD(ps, {.dampening = 2.0}), ValueError, WhatContains({"SGD", "dampening", "[0, 1]"}));
    REQUIRE_THROWS_MATCHES(nn::SGD(ps, {.dampening = -0.5}), ValueError, WhatContains({"SGD", "[0, 1]"}));
    REQUIRE_THROWS_MATCHES(nn::SGD(ps, {.dampening = kNaN}), ValueError, WhatContains({"SGD", "[0, 1]"}));
    REQUIRE_THROWS_MATCHES(nn::SGD(ps, {.momentum = kInf}), ValueError,
                           WhatContains({"SGD", "momentum", "finite and >= 0"}));
    // The edges of each range are allowed.
    CHECK_NOTHROW(nn::SGD(ps, {.momentum = 0.9, .dampening = 1.0}));
    CHECK_NOTHROW(nn::RMSprop(ps, {.alpha = 1.0}));
    CHECK_NOTHROW(nn::Adam(ps, {.beta1 = 0.0, .weight_decay = 0.0}));
}
