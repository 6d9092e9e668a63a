// SLURM node and task lists (node_list.h) and this machine's network identities
// (local_addresses.h), the inputs the launch resolver matches against.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>

#include "comm/local_addresses.h"
#include "parallel/node_list.h"
#include "test_support.h"

namespace shardlm::parallel {
namespace {

using ::shardlm::testing::error_of;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// ---- node lists -------------------------------------------------------------------------------

TEST(NodeList, ExpandsRangesListsAndProducts) {
  EXPECT_THAT(expand_node_list("node[01-03,07],gpu5,rack[1-2]-n[1-2]"),
              ElementsAre("node01", "node02", "node03", "node07", "gpu5", "rack1-n1", "rack1-n2",
                          "rack2-n1", "rack2-n2"));
  EXPECT_THAT(expand_node_list("gpu5"), ElementsAre("gpu5"));
  EXPECT_TRUE(expand_node_list("").empty());
  EXPECT_THAT(expand_node_list("n[8-10]"), ElementsAre("n8", "n9", "n10"));
  EXPECT_THAT(expand_node_list("n[098-100]"), ElementsAre("n098", "n099", "n100"));
  EXPECT_THAT(expand_node_list("[1-2].ib"), ElementsAre("1.ib", "2.ib"));
  EXPECT_THAT(expand_node_list("a[3],b-c.d"), ElementsAre("a3", "b-c.d"));
}

TEST(NodeList, MalformedListsAreNamed) {
  for (const char* list : {"node[01-03", "node01]", "node[[1]]", "node[]", "node[3-1]", "node[a-b]",
                           "a,,b", "node[1-2-3]", "node[1,]", "a,", "n[-1]"}) {
    const std::string e = error_of([&] { expand_node_list(list); });
    EXPECT_THAT(e, HasSubstr(list)) << list;
  }
  EXPECT_THAT(error_of([] { expand_node_list("n[3-1]"); }), HasSubstr("backwards"));
  EXPECT_THAT(error_of([] { expand_node_list("n[0-99999999]"); }), HasSubstr("more than"));
}

TEST(NodeList, TasksPerNode) {
  EXPECT_THAT(expand_tasks_per_node("2(x3),1"), ElementsAre(2, 2, 2, 1));
  EXPECT_THAT(expand_tasks_per_node("4"), ElementsAre(4));
  EXPECT_THAT(expand_tasks_per_node("1,2(x2)"), ElementsAre(1, 2, 2));
  for (const char* list : {"", "x", "2(x)", "2(3)", "2(x3", "2(x3),", "2(xa)", "-1"}) {
    EXPECT_THAT(error_of([&] { expand_tasks_per_node(list); }), HasSubstr("SLURM list")) << list;
  }
}

// ---- this machine ----------------------------------------------------------------------------

TEST(LocalAddresses, CanonicalForms) {
  EXPECT_EQ(comm::canonical_address("10.0.0.1"), "10.0.0.1");
  EXPECT_EQ(comm::canonical_address("0:0::1"), "::1");
  EXPECT_EQ(comm::canonical_address("[FE80::1]"), "fe80::1");
  EXPECT_EQ(comm::canonical_address("fe80::1%eth0"), "fe80::1");
  EXPECT_EQ(comm::canonical_address("Node-A.Example"), "node-a.example");
  EXPECT_EQ(comm::canonical_address("10.0.0.256"), "10.0.0.256");
}

TEST(LocalAddresses, ListsThisMachine) {
  const auto addresses = comm::interface_addresses();
  EXPECT_THAT(addresses, Contains("127.0.0.1"));
  for (const auto& a : addresses) EXPECT_EQ(comm::canonical_address(a), a);
  const auto names = comm::host_names();
  ASSERT_FALSE(names.empty());
  const auto all = comm::machine_identities();
  EXPECT_THAT(all, Contains(names.front()));
  EXPECT_EQ(std::set<std::string>(all.begin(), all.end()).size(), all.size());
}

}  // namespace
}  // namespace shardlm::parallel
