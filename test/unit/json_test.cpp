// json_test.cpp — jansson RAII and getters: absent ≡ null, false/0 are values.
#include "core/json.h"

#include <gtest/gtest.h>

using namespace igid;

TEST(Json, ParsesWithLengthNotNulTerminator) {
    const char buf[] = R"({"a":1}garbage)";
    JsonPtr j = json_parse(std::string_view(buf, 7));
    ASSERT_TRUE(j);
    EXPECT_EQ(json_get_int(j.get(), "a"), 1);
    EXPECT_FALSE(json_parse(std::string_view(buf, sizeof buf - 1)));
}

TEST(Json, MalformedAndScalarsAreNull) {
    EXPECT_FALSE(json_parse(""));
    EXPECT_FALSE(json_parse("{"));
    EXPECT_FALSE(json_parse("\"just a string\""));
    EXPECT_FALSE(json_parse("42"));
    EXPECT_TRUE(json_parse("[]"));
}

TEST(Json, AbsentAndNullAreTheSame) {
    JsonPtr j = json_parse(R"({"n":null})");
    ASSERT_TRUE(j);
    EXPECT_EQ(json_get(j.get(), "n"), nullptr);
    EXPECT_EQ(json_get(j.get(), "missing"), nullptr);
    EXPECT_FALSE(json_has(j.get(), "n"));
    EXPECT_FALSE(json_get_string(j.get(), "n"));
    EXPECT_FALSE(json_get_bool(j.get(), "n"));
}

TEST(Json, FalseAndZeroAreValues) {
    JsonPtr j = json_parse(R"({"f":false,"z":0,"e":""})");
    ASSERT_TRUE(j);
    ASSERT_TRUE(json_get_bool(j.get(), "f").has_value());
    EXPECT_FALSE(*json_get_bool(j.get(), "f"));
    ASSERT_TRUE(json_get_int(j.get(), "z").has_value());
    EXPECT_EQ(*json_get_int(j.get(), "z"), 0);
    EXPECT_EQ(json_get_string(j.get(), "e"), std::string());
}

TEST(Json, WrongTypeIsNoValueButPresent) {
    JsonPtr j = json_parse(R"({"s":5,"b":"true"})");
    EXPECT_FALSE(json_get_string(j.get(), "s"));
    EXPECT_TRUE(json_has(j.get(), "s"));
    EXPECT_FALSE(json_get_bool(j.get(), "b"));
}

TEST(Json, LenientIntegers) {
    JsonPtr j = json_parse(R"({"a":190,"b":"190","c":"-3","d":"19x","e":3.0,"f":3.5,"g":""})");
    EXPECT_EQ(json_get_int_lenient(j.get(), "a"), 190);
    EXPECT_EQ(json_get_int_lenient(j.get(), "b"), 190);
    EXPECT_EQ(json_get_int_lenient(j.get(), "c"), -3);
    EXPECT_FALSE(json_get_int_lenient(j.get(), "d"));
    EXPECT_EQ(json_get_int_lenient(j.get(), "e"), 3);
    EXPECT_FALSE(json_get_int_lenient(j.get(), "f"));
    EXPECT_FALSE(json_get_int_lenient(j.get(), "g"));
    EXPECT_FALSE(json_get_int(j.get(), "b"));
}

TEST(Json, Ids) {
    JsonPtr j = json_parse(R"({"s":"1234567890123456","n":1234567890123456,"neg":-1,"empty":"","o":{}})");
    EXPECT_EQ(json_get_id(j.get(), "s"), "1234567890123456");
    EXPECT_EQ(json_get_id(j.get(), "n"), "1234567890123456");
    EXPECT_FALSE(json_get_id(j.get(), "neg"));
    EXPECT_FALSE(json_get_id(j.get(), "empty"));
    EXPECT_FALSE(json_get_id(j.get(), "o"));
}

TEST(Json, EmbeddedNulIsRejected) {
    EXPECT_FALSE(json_parse(R"({"a":"x\u0000y"})"));
}

TEST(Json, GettersOnNonObjects) {
    JsonPtr j = json_parse("[1,2]");
    EXPECT_EQ(json_get(j.get(), "a"), nullptr);
    EXPECT_EQ(json_get(nullptr, "a"), nullptr);
    EXPECT_EQ(json_get_object(nullptr, "a"), nullptr);
}
