// profile_test.cpp — the User Profile API answer and its traps.
#include "core/profile.h"

#include <gtest/gtest.h>

using namespace igid;

namespace {
const char *kDocumented =
    R"({"name":"Stories Store","username":"stories.in.store",
 "profile_pic":"https://scontent-iad3-2.cdninstagram.com/v/t51.2885-19/123_n.jpg?stp=dst-jpg&oe=68BDB031",
 "is_verified_user":false,"follower_count":1,
 "is_user_follow_business":false,"is_business_follow_user":false,
 "id":"819898670256713"})";
}

TEST(Profile, DocumentedAnswer) {
    ProfileResult r = parse_profile(kDocumented, "819898670256713");
    ASSERT_EQ(r.status, ProfileStatus::ok);
    const Profile &p = *r.profile;
    EXPECT_EQ(p.id, "819898670256713");
    EXPECT_EQ(p.username, "stories.in.store");
    EXPECT_EQ(p.name, "Stories Store");
    EXPECT_NE(p.profile_pic->find("oe=68BDB031"), std::string::npos);
    EXPECT_EQ(p.follower_count, 1);
}

TEST(Profile, FalseIsAValue) {
    ProfileResult r = parse_profile(kDocumented, "819898670256713");
    ASSERT_TRUE(r.profile);
    ASSERT_TRUE(r.profile->is_verified_user.has_value());
    EXPECT_FALSE(*r.profile->is_verified_user);
    ASSERT_TRUE(r.profile->is_user_follow_business.has_value());
    EXPECT_FALSE(*r.profile->is_user_follow_business);
    ASSERT_TRUE(r.profile->is_business_follow_user.has_value());
}

TEST(Profile, ZeroFollowersIsAValue) {
    ProfileResult r = parse_profile(R"({"username":"a","follower_count":0,"id":"5"})", "5");
    ASSERT_TRUE(r.profile);
    EXPECT_EQ(r.profile->follower_count, 0);
}

TEST(Profile, AbsentAndNullNameAreTheSame) {
    ProfileResult absent = parse_profile(R"({"username":"jane.doe","id":"5"})", "5");
    ProfileResult null = parse_profile(R"({"username":"jane.doe","name":null,"id":"5"})", "5");
    ASSERT_EQ(absent.status, ProfileStatus::ok);
    ASSERT_EQ(null.status, ProfileStatus::ok);
    EXPECT_FALSE(absent.profile->name);
    EXPECT_FALSE(null.profile->name);
    EXPECT_EQ(null.profile->username, "jane.doe");
}

TEST(Profile, NullProfilePic) {
    ProfileResult r = parse_profile(R"({"username":"jane.doe","profile_pic":null,"id":"5"})", "5");
    ASSERT_EQ(r.status, ProfileStatus::ok);
    EXPECT_FALSE(r.profile->profile_pic);
}

TEST(Profile, EmptyStringIsNotAValue) {
    ProfileResult r = parse_profile(R"({"username":"","name":"","id":"5"})", "5");
    ASSERT_EQ(r.status, ProfileStatus::ok);
    EXPECT_FALSE(r.profile->username);
    EXPECT_FALSE(r.profile->name);
}

TEST(Profile, EmptyObjectIsNoInformation) {
    ProfileResult r = parse_profile("{}", "5");
    EXPECT_EQ(r.status, ProfileStatus::no_information);
    EXPECT_FALSE(r.profile);
}

TEST(Profile, OnlyNullsAndUnknownFieldsIsNoInformation) {
    EXPECT_EQ(parse_profile(R"({"name":null,"username":null,"other":1})", "5").status, ProfileStatus::no_information);
}

TEST(Profile, IdOnlyIsAProfileWithNothingKnown) {
    ProfileResult r = parse_profile(R"({"id":"5"})", "5");
    ASSERT_EQ(r.status, ProfileStatus::ok);
    EXPECT_FALSE(r.profile->username);
}

TEST(Profile, FieldsWithoutIdStillCount) {
    ProfileResult r = parse_profile(R"({"username":"x"})", "5");
    ASSERT_EQ(r.status, ProfileStatus::ok);
    EXPECT_EQ(r.profile->id, "5");
}

TEST(Profile, MismatchedIdIsRejected) {
    ProfileResult r = parse_profile(R"({"username":"someone.else","id":"999"})", "5");
    EXPECT_EQ(r.status, ProfileStatus::id_mismatch);
    EXPECT_FALSE(r.profile);
}

TEST(Profile, NumericIdMatches) {
    EXPECT_EQ(parse_profile(R"({"username":"a","id":819898670256713})", "819898670256713").status,
              ProfileStatus::ok);
}

TEST(Profile, Malformed) {
    for (const char *bad : {"", "{", "[]", "null", R"({"username":5,"id":"5"})",
                            R"({"is_verified_user":"false","id":"5"})", R"({"follower_count":"1","id":"5"})",
                            R"({"id":{"x":1}})", "<html>"})
        EXPECT_EQ(parse_profile(bad, "5").status, ProfileStatus::malformed) << bad;
}

TEST(Profile, ErrorEnvelope) {
    ProfileResult r = parse_profile(
        R"({"error":{"message":"(#230) Requires pages_messaging permission","type":"OAuthException","code":230,"fbtrace_id":"A"}})",
        "5");
    ASSERT_EQ(r.status, ProfileStatus::graph_error);
    EXPECT_EQ(r.error->code, 230);
    EXPECT_FALSE(r.profile);
}

TEST(Profile, UnusableErrorEnvelopeIsMalformed) {
    EXPECT_EQ(parse_profile(R"({"error":{"message":"x"}})", "5").status, ProfileStatus::malformed);
}
