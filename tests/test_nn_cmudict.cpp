// nn::parse_cmudict and friends: Festival's lexicon lines parsed (parts of speech, syllables, stress
// on syllables or on phonemes), the word-level split (deterministic, disjoint, case-blind), the
// vocabularies, edit distance, hostile lines refused with exact messages, and the real file when
// Debian's festlex-cmu is installed.
#include <catch2/catch.hpp>

#include <filesystem>
#include <set>

#include <tapegrad/tapegrad.hpp>

#include "error_matchers.hpp"

using namespace tapegrad;

using Catch::Matchers::Message;

namespace {
const char* kSample = "MNCL\n"
                      "(\"a\" dt (((ax) 0)))\n"
                      "(\"a\" n (((ey) 1)))\n"
                      "; a comment\n"
                      "\n"
                      "(\"abbey\" nil (((ae b) 1) ((iy) 0)))\n"
                      "(\"AWOL\" nil (((ey) 1) ((w ao l) 1)))\r\n"
                      "(\"record\" n (((r eh1 k) 1) ((er0 d) 0)))\n";

std::string parse_error(const std::string& line) {
    try {
        nn::parse_cmudict(line, "dict.out");
    } catch (const FormatError& e) {
        return e.what();
    }
    return "(no error)";
}
}  // namespace

TEST_CASE("parse_cmudict reads words, parts of speech, syllables and stress", "[nn][cmudict]") {
    const auto entries = nn::parse_cmudict(kSample, "sample");
    REQUIRE(entries.size() == 5);
    CHECK(entries[0].word == "a");
    CHECK(entries[0].part_of_speech == "dt");
    CHECK(entries[0].line == 2);
    CHECK(entries[1].part_of_speech == "n");
    const nn::CmuEntry& abbey = entries[2];
    CHECK(abbey.word == "abbey");
    CHECK(abbey.part_of_speech == "nil");
    CHECK(abbey.line == 6);
    CHECK(abbey.syllables == 2);
    REQUIRE(abbey.phonemes.size() == 3);
    CHECK(abbey.phonemes[0].name == "ae");
    CHECK(abbey.phonemes[0].stress == 1);
    CHECK(abbey.phonemes[1].syllable == 0);
    CHECK(abbey.phonemes[2].syllable == 1);
    CHECK(abbey.phonemes[2].stress == 0);
    CHECK(entries[3].word == "AWOL");  // case kept, CRLF line end accepted
    CHECK(entries[3].line == 7);
}

TEST_CASE("Phonemes with and without stress: syllable stress on vowels, a phoneme's own digit first",
          "[nn][cmudict]") {
    const auto entries = nn::parse_cmudict(kSample);
    CHECK(nn::cmu_phonemes(entries[2], false) == std::vector<std::string>{"ae", "b", "iy"});
    CHECK(nn::cmu_phonemes(entries[2], true) == std::vector<std::string>{"ae1", "b", "iy0"});
    CHECK(nn::cmu_phonemes(entries[3], true) == std::vector<std::string>{"ey1", "w", "ao1", "l"});
    // "record": eh1 and er0 carry their own digits, which win over the syllables' stress.
    CHECK(nn::cmu_phonemes(entries[4], false) == std::vector<std::string>{"r", "eh", "k", "er", "d"});
    CHECK(nn::cmu_phonemes(entries[4], true) == std::vector<std::string>{"r", "eh1", "k", "er0", "d"});
    CHECK(nn::cmu_letters(entries[3]) == std::vector<std::string>{"a", "w", "o", "l"});
    CHECK(nn::is_vowel("ax"));
    CHECK(nn::is_vowel("uw"));
    CHECK_FALSE(nn::is_vowel("ng"));
    CHECK_FALSE(nn::is_vowel(""));
}

TEST_CASE("The split is by word: deterministic, disjoint, case-blind, near the fractions asked", "[nn][cmudict]") {
    // The hash is of the lower-cased spelling: every spelling of a word falls in the same part.
    CHECK(nn::cmu_split_of("abbey") == nn::cmu_split_of("ABBEY"));
    std::vector<nn::CmuEntry> entries;
    for (int i = 0; i < 20000; ++i) {
        nn::CmuEntry e;
        e.word = "w" + std::to_string(i / 2);  // two pronunciations per word
        e.phonemes = {{"ax", 0, 0}};
        e.syllables = 1;
        entries.push_back(e);
    }
    const nn::CmuDictSplits a = nn::split_cmudict(entries), b = nn::split_cmudict(entries);
    CHECK(a.train.size() + a.validation.size() + a.test.size() == entries.size());
    CHECK(a.train.size() == b.train.size());
    CHECK(a.test.size() == b.test.size());
    std::set<std::string> train, validation, test;
    for (const auto& e : a.train) train.insert(e.word);
    for (const auto& e : a.validation) validation.insert(e.word);
    for (const auto& e : a.test) test.insert(e.word);
    for (const auto& w : test) {
        CHECK(train.count(w) == 0);
        CHECK(validation.count(w) == 0);
    }
    for (const auto& w : validation) CHECK(train.count(w) == 0);
    // Both pronunciations of a word land together: every part holds an even number of entries.
    CHECK(a.test.size() % 2 == 0);
    CHECK(a.validation.size() % 2 == 0);
    CHECK(a.test.size() > 800);  // 5% of 20 000 is 1 000
    CHECK(a.test.size() < 1200);
    CHECK(a.validation.size() > 800);
    CHECK(a.validation.size() < 1200);
    const nn::CmuDictSplits none = nn::split_cmudict(entries, {.validation = 0, .test = 0});
    CHECK(none.train.size() == entries.size());
    CHECK_THROWS_MATCHES(nn::cmu_split_of("x", {.validation = 0.6, .test = 0.5}), ValueError,
                         Message("cmu_split_of: validation (0.6) and test (0.5) must be in [0, 1) with a sum below 1"));
    CHECK(std::string(nn::cmu_split_name(nn::CmuSplit::validation)) == "validation");
}

TEST_CASE("TokenVocab reserves pad, start, end and unknown and sorts its symbols", "[nn][cmudict]") {
    const auto entries = nn::parse_cmudict(kSample);
    const nn::TokenVocab letters = nn::cmu_letter_vocab(entries);
    CHECK(letters.names() == std::vector<std::string>{"<pad>", "<s>", "</s>", "<unk>", "a", "b", "c", "d", "e",
                                                      "l", "o", "r", "w", "y"});
    CHECK(letters.id("b") == 5);
    CHECK(letters.id("z") == nn::TokenVocab::unknown_id);
    CHECK(letters.encode({"a", "b", "q"}) == std::vector<std::int64_t>{4, 5, 3});
    CHECK(letters.decode({1, 4, 5, 2, 6}) == std::vector<std::string>{"a", "b"});  // stops at the end id
    const nn::TokenVocab stressed = nn::cmu_phoneme_vocab(entries, true);
    CHECK(stressed.id("ae1") > 3);
    CHECK(stressed.id("ae") == nn::TokenVocab::unknown_id);
    CHECK_THROWS_MATCHES(letters.name(14), ValueError, Message("TokenVocab::name: id 14 is outside [0, 14)"));
    CHECK_THROWS_MATCHES(nn::TokenVocab({"a", "a"}), ValueError,
                         Message("TokenVocab: symbol 'a' is repeated (already id 4)"));
    CHECK_THROWS_MATCHES(nn::TokenVocab({"<s>"}), ValueError, Message("TokenVocab: symbol '<s>' is a reserved name"));
}

TEST_CASE("edit_distance counts insertions, deletions and substitutions", "[nn][cmudict]") {
    CHECK(nn::edit_distance({}, {}) == 0);
    CHECK(nn::edit_distance({1, 2, 3}, {}) == 3);
    CHECK(nn::edit_distance({}, {1, 2}) == 2);
    CHECK(nn::edit_distance({1, 2, 3}, {1, 2, 3}) == 0);
    CHECK(nn::edit_distance({1, 2, 3}, {1, 4, 3}) == 1);
    CHECK(nn::edit_distance({1, 2, 3, 4}, {2, 3, 4, 5}) == 2);  // kitten/sitting-style shift
}

TEST_CASE("Malformed and hostile lines are refused, naming the file, the line and what is wrong",
          "[nn][cmudict][errors]") {
    CHECK(parse_error("\n\n\"a\" nil (((ax) 0)))") ==
          "parse_cmudict: 'dict.out' line 3: expected '(' to open the entry, found '\"' at column 1");
    CHECK(parse_error("(\"\" nil (((ax) 0)))") == "parse_cmudict: 'dict.out' line 1: the word is empty");
    CHECK(parse_error("(\"ab c\" nil (((ax) 0)))") ==
          "parse_cmudict: 'dict.out' line 1: the word holds a space at column 5 (only printable ASCII without "
          "spaces, quotes or backslashes)");
    CHECK(parse_error("(\"a\xc3\xa9\" nil (((ax) 0)))") ==
          "parse_cmudict: 'dict.out' line 1: the word holds byte 0xc3 at column 4 (only printable ASCII without "
          "spaces, quotes or backslashes)");
    CHECK(parse_error("(\"abc") == "parse_cmudict: 'dict.out' line 1: the word's closing '\"' is missing");
    CHECK(parse_error("(\"" + std::string(65, 'a') + "\" nil (((ax) 0)))") ==
          "parse_cmudict: 'dict.out' line 1: the word is 65 bytes long, more than 64");
    CHECK(parse_error("(\"a\" (((ax) 0)))") ==
          "parse_cmudict: 'dict.out' line 1: expected a part of speech (nil when none), found '(' at column 6");
    CHECK(parse_error("(\"a\" nil (((AX) 0)))") ==
          "parse_cmudict: 'dict.out' line 1: phoneme 'AX' at column 13 is not lower-case letters with at most one "
          "stress digit");
    CHECK(parse_error("(\"a\" nil (((ax7) 0)))") ==
          "parse_cmudict: 'dict.out' line 1: phoneme 'ax7' at column 13 has stress 7, not 0, 1 or 2");
    CHECK(parse_error("(\"a\" nil (((abcdefghi) 0)))") ==
          "parse_cmudict: 'dict.out' line 1: phoneme 'abcdefghi' at column 13 is longer than 8 letters");
    CHECK(parse_error("(\"a\" nil ((() 0)))") == "parse_cmudict: 'dict.out' line 1: syllable 1 has no phonemes");
    CHECK(parse_error("(\"a\" nil (((ax) 3)))") ==
          "parse_cmudict: 'dict.out' line 1: syllable 1 has stress '3' at column 17, not 0, 1 or 2");
    CHECK(parse_error("(\"a\" nil (((ax))))") ==
          "parse_cmudict: 'dict.out' line 1: expected the syllable's stress (0, 1 or 2), found ')' at column 16");
    CHECK(parse_error("(\"a\" nil ())") == "parse_cmudict: 'dict.out' line 1: the pronunciation is empty");
    CHECK(parse_error("(\"a\" nil (((ax) 0))") ==
          "parse_cmudict: 'dict.out' line 1: expected ')' to close the entry, found the end of the line");
    CHECK(parse_error("(\"a\" nil (((ax) 0))) x") ==
          "parse_cmudict: 'dict.out' line 1: unexpected 'x' at column 22 after the entry");
    std::string many = "(\"a\" nil (";
    for (int i = 0; i < 65; ++i) many += "((ax) 0)";
    many += "))";
    CHECK(parse_error(many) == "parse_cmudict: 'dict.out' line 1: more than 64 phonemes in one pronunciation");
    CHECK(parse_error("MNCL\n; nothing\n") == "parse_cmudict: 'dict.out' holds no entries");
    CHECK_THROWS_MATCHES(nn::read_cmudict("/nonexistent/cmudict.out"), FormatError,
                         WhatContains({"'/nonexistent/cmudict.out'"}));
}

TEST_CASE("The real dictionary of festlex-cmu, when installed, parses and splits", "[nn][cmudict][data]") {
    if (!std::filesystem::exists(nn::kCmudictPath)) {
        WARN("festlex-cmu is not installed: " << nn::kCmudictPath << " is missing");
        return;
    }
    const auto entries = nn::read_cmudict();
    CHECK(entries.size() > 100000);
    CHECK(entries.front().word == "a");
    const nn::CmuDictSplits s = nn::split_cmudict(entries);
    CHECK(s.test.size() > entries.size() / 25);   // about 5%
    CHECK(s.test.size() < entries.size() / 15);
    const nn::TokenVocab letters = nn::cmu_letter_vocab(s.train), phones = nn::cmu_phoneme_vocab(s.train, false);
    CHECK(letters.size() == 4 + 26);
    CHECK(phones.size() > 4 + 38);
    CHECK(phones.size() < 4 + 50);
}
