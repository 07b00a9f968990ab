// A Catch2 matcher for the error-case tests: an exception whose what() contains every given piece.
//   REQUIRE_THROWS_MATCHES(expr, ShapeError, WhatContains({"matmul", "[2, 3]"}));
#pragma once

#include <exception>
#include <initializer_list>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

class WhatContains : public Catch::MatcherBase<std::exception> {
public:
    WhatContains(std::initializer_list<std::string> pieces) : pieces_(pieces) {}
    bool match(const std::exception& e) const override {
        const std::string what = e.what();
        for (const std::string& p : pieces_)
            if (what.find(p) == std::string::npos) return false;
        return true;
    }
    std::string describe() const override {
        std::string s = "has a message containing";
        for (const std::string& p : pieces_) s += " \"" + p + "\"";
        return s;
    }

private:
    std::vector<std::string> pieces_;
};
