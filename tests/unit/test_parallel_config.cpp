// The parallel layout: node-major global ranks, TP groups inside PP stages, near-equal contiguous
// layer ranges, and the start-up checks of validate_parallel (each error names what is wrong).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/error.h"
#include "parallel/parallel_config.h"

namespace shardlm::parallel {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

ModelConfig model() {
  ModelConfig c;
  c.n_layers = 8;
  c.d_model = 64;
  c.n_heads = 8;
  c.n_kv_heads = 2;
  c.head_dim = 8;
  c.ffn_dim = 192;
  c.vocab_size = 256;
  return c;
}

std::string validate_error(ParallelConfig cfg, int world, int nnodes, const ModelConfig& m) {
  try {
    validate_parallel(cfg, world, nnodes, m);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(ParallelConfig, WorldSizeIsTpTimesPp) {
  EXPECT_EQ((ParallelConfig{}).world_size(), 1);
  EXPECT_EQ((ParallelConfig{4, 2}).world_size(), 8);
}

TEST(ParallelConfig, GlobalRankIsNodeMajor) {
  EXPECT_EQ(global_rank(0, 4, 0), 0);
  EXPECT_EQ(global_rank(1, 4, 2), 6);
  EXPECT_EQ(global_rank(3, 1, 0), 3);
}

TEST(ParallelConfig, TpGroupsLiveInsideStages) {
  const ParallelConfig cfg{2, 2};
  const int expected[][2] = {{0, 0}, {1, 0}, {0, 1}, {1, 1}};  // {tp_rank, stage}
  for (int rank = 0; rank < 4; ++rank) {
    const RankLayout l = rank_layout(cfg, rank, 8);
    EXPECT_EQ(l.rank, rank);
    EXPECT_EQ(l.tp_rank, expected[rank][0]) << rank;
    EXPECT_EQ(l.pp_stage, expected[rank][1]) << rank;
    EXPECT_EQ(l.first_layer, l.pp_stage * 4);
    EXPECT_EQ(l.last_layer, l.pp_stage * 4 + 4);
    EXPECT_EQ(l.is_master(), rank == 0);
  }
}

TEST(ParallelConfig, LayersSplitIntoNearEqualContiguousRanges) {
  EXPECT_EQ(stage_layer_range(0, 3, 10), std::make_pair(0, 4));
  EXPECT_EQ(stage_layer_range(1, 3, 10), std::make_pair(4, 7));
  EXPECT_EQ(stage_layer_range(2, 3, 10), std::make_pair(7, 10));
  EXPECT_EQ(stage_layer_range(0, 1, 30), std::make_pair(0, 30));
  for (int n_layers : {1, 7, 30, 61}) {
    for (int pp = 1; pp <= n_layers && pp <= 9; ++pp) {
      int next = 0;
      for (int s = 0; s < pp; ++s) {
        const auto [first, last] = stage_layer_range(s, pp, n_layers);
        EXPECT_EQ(first, next);
        EXPECT_GE(last - first, n_layers / pp);
        EXPECT_LE(last - first, n_layers / pp + 1);
        next = last;
      }
      EXPECT_EQ(next, n_layers);
    }
  }
  EXPECT_THROW(stage_layer_range(0, 9, 8), Error);
}

TEST(ParallelConfig, PureTensorAndPurePipelineLayouts) {
  const RankLayout tp = rank_layout({4, 1}, 3, 30);
  EXPECT_EQ(tp.tp_rank, 3);
  EXPECT_EQ(tp.pp_stage, 0);
  EXPECT_EQ(tp.last_layer, 30);
  const RankLayout pp = rank_layout({1, 3}, 2, 30);
  EXPECT_EQ(pp.tp_rank, 0);
  EXPECT_EQ(pp.pp_stage, 2);
  EXPECT_EQ(pp.first_layer, 20);
}

TEST(ParallelConfig, RankOutsideTheGroupIsAnError) {
  EXPECT_THROW(rank_layout({2, 2}, 4, 8), Error);
  EXPECT_THROW(rank_layout({2, 2}, -1, 8), Error);
  try {
    rank_layout({2, 2}, 7, 8);
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("rank 7"));
    EXPECT_THAT(e.what(), HasSubstr("4 ranks"));
  }
}

TEST(ParallelConfig, TpGroupAndPipelinePeers) {
  const ParallelConfig cfg{2, 3};
  EXPECT_THAT(tp_group(cfg, 0), ElementsAre(0, 1));
  EXPECT_THAT(tp_group(cfg, 3), ElementsAre(2, 3));
  EXPECT_THAT(tp_group(cfg, 5), ElementsAre(4, 5));
  EXPECT_THAT(pp_peers(cfg, 0), ElementsAre(0, 2, 4));
  EXPECT_THAT(pp_peers(cfg, 3), ElementsAre(1, 3, 5));
  EXPECT_THAT(tp_group({1, 2}, 1), ElementsAre(1));
  EXPECT_THAT(pp_peers({4, 1}, 2), ElementsAre(2));
}

TEST(ParallelConfig, DescribeNamesEveryCoordinate) {
  const ParallelConfig cfg{2, 2};
  EXPECT_EQ(describe(cfg, rank_layout(cfg, 3, 30)),
            "rank 3: tp rank 1 of 2, stage 1 of 2, layers 15-29");
}

TEST(ParallelConfig, ValidLayoutsPass) {
  EXPECT_NO_THROW(validate_parallel({1, 1}, 1, 1, model()));
  EXPECT_NO_THROW(validate_parallel({2, 2}, 4, 2, model()));
  EXPECT_NO_THROW(validate_parallel({2, 2}, 4, 4, model()));
  EXPECT_NO_THROW(validate_parallel({1, 8}, 8, 1, model()));
  // tp 4 and 8 are multiples of the 2 KV heads: KV heads replicate.
  EXPECT_NO_THROW(validate_parallel({4, 1}, 4, 1, model()));
  EXPECT_NO_THROW(validate_parallel({8, 1}, 8, 2, model()));
}

TEST(ParallelConfig, WorldSizeMismatchNamesBothSides) {
  const std::string e = validate_error({2, 2}, 3, 1, model());
  EXPECT_THAT(e, HasSubstr("--tp 2 x --pp 2 = 4 ranks"));
  EXPECT_THAT(e, HasSubstr("started 3"));
  EXPECT_THAT(e, HasSubstr("--nproc-per-node"));
}

TEST(ParallelConfig, WorldMustDivideOverNodes) {
  const std::string e = validate_error({3, 1}, 3, 2, model());
  EXPECT_THAT(e, HasSubstr("3 ranks over 2 nodes"));
  EXPECT_THAT(validate_error({1, 1}, 1, 0, model()), HasSubstr("--nnodes"));
}

TEST(ParallelConfig, TpAndPpMustBePositive) {
  EXPECT_THAT(validate_error({0, 1}, 1, 1, model()), HasSubstr("--tp"));
  EXPECT_THAT(validate_error({1, 0}, 1, 1, model()), HasSubstr("--pp"));
  EXPECT_THAT(validate_error({-2, 1}, 1, 1, model()), HasSubstr("at least 1"));
}

TEST(ParallelConfig, TpMustDivideHeadsAndListsWhatFits) {
  const std::string e = validate_error({3, 1}, 3, 1, model());
  EXPECT_THAT(e, HasSubstr("--tp 3"));
  EXPECT_THAT(e, HasSubstr("attention heads (8)"));
  EXPECT_THAT(e, HasSubstr("accepts: 1, 2, 4, 8"));
}

TEST(ParallelConfig, KvHeadsSplitOrReplicate) {
  ModelConfig m = model();
  m.n_heads = 12;
  m.n_kv_heads = 4;
  m.ffn_dim = 240;
  m.d_model = 96;
  m.vocab_size = 480;
  EXPECT_NO_THROW(validate_parallel({2, 1}, 2, 1, m));    // splits the 4 KV heads
  EXPECT_NO_THROW(validate_parallel({12, 1}, 12, 1, m));  // replicates them 3 times
  const std::string e = validate_error({6, 1}, 6, 1, m);
  EXPECT_THAT(e, HasSubstr("KV heads (4)"));
  EXPECT_THAT(e, HasSubstr("replicated"));
  EXPECT_THAT(valid_tp_sizes(m), ElementsAre(1, 2, 4, 12));
}

TEST(ParallelConfig, TpMustDivideFfnHiddenAndVocabulary) {
  ModelConfig m = model();
  m.ffn_dim = 100;
  EXPECT_THAT(validate_error({8, 1}, 8, 1, m), HasSubstr("FFN width (100)"));
  m = model();
  m.vocab_size = 250;
  EXPECT_THAT(validate_error({4, 1}, 4, 1, m), HasSubstr("vocabulary size (250)"));
  m = model();
  m.d_model = 36;
  EXPECT_THAT(validate_error({8, 1}, 8, 1, m), HasSubstr("hidden size (36)"));
}

TEST(ParallelConfig, PpAtMostTheLayers) {
  const std::string e = validate_error({1, 9}, 9, 1, model());
  EXPECT_THAT(e, HasSubstr("--pp 9"));
  EXPECT_THAT(e, HasSubstr("8 layers"));
}

}  // namespace
}  // namespace shardlm::parallel
