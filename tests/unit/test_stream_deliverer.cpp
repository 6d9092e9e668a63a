// The stream deliverer, threaded and inline: each stream sees its outputs in the order they were
// handed over, batch after batch; a failure lands after the outputs queued before it; destruction
// delivers everything still queued; one batch feeds many streams, each waking its consumer.
#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <string>
#include <vector>

#include "engine/stream_deliverer.h"
#include "stream_test_output.h"

namespace shardlm {
namespace {

using std::chrono::milliseconds;

using stream_test::kForever;
using stream_test::output;

std::vector<std::shared_ptr<RequestStream>> make_streams(int n) {
  std::vector<std::shared_ptr<RequestStream>> streams;
  for (int i = 0; i < n; ++i) streams.push_back(std::make_shared<RequestStream>(i));
  return streams;
}

// Everything a stream holds (all pushes merge into one pending output).
RequestOutput take(RequestStream& s) {
  std::optional<RequestOutput> out = s.try_next();
  return out ? std::move(*out) : RequestOutput{};
}

class StreamDelivererTest : public ::testing::TestWithParam<bool> {};

INSTANTIATE_TEST_SUITE_P(ThreadedAndInline, StreamDelivererTest, ::testing::Bool());

TEST_P(StreamDelivererTest, EachStreamSeesItsOutputsInOrderAcrossBatches) {
  auto streams = make_streams(5);
  StreamDeliverer deliverer(GetParam());
  StreamDeliverer::Batch batch;
  constexpr int kSteps = 200;
  for (int step = 0; step < kSteps; ++step) {
    for (auto& s : streams) {
      batch.push_back({s, output(s->id(), std::to_string(step) + ",", step == kSteps - 1)});
    }
    deliverer.hand_over(batch);
    EXPECT_TRUE(batch.empty());
  }
  deliverer.flush();
  std::string expected;
  for (int step = 0; step < kSteps; ++step) expected += std::to_string(step) + ",";
  for (auto& s : streams) {
    const RequestOutput all = take(*s);
    EXPECT_EQ(all.text, expected) << "stream " << s->id();
    EXPECT_EQ(all.finish_reason, RequestFinishReason::kStop);
  }
}

TEST_P(StreamDelivererTest, AFailureArrivesAfterTheOutputsBeforeIt) {
  auto streams = make_streams(2);
  StreamDeliverer deliverer(GetParam());
  StreamDeliverer::Batch batch;
  batch.push_back({streams[0], output(0, "a", false)});
  batch.push_back({streams[1], output(1, "b", true)});
  deliverer.hand_over(batch);
  batch.push_back({streams[0], output(0, "c", false)});
  deliverer.hand_over(batch);
  batch.push_back({streams[0], {}, std::string("the step failed")});
  batch.push_back({streams[1], {}, std::string("the step failed")});
  deliverer.hand_over(batch);
  deliverer.flush();
  // Had the failure overtaken them, the stream would have ended before "a" and "c" came.
  const RequestOutput failed = take(*streams[0]);
  EXPECT_EQ(failed.text, "ac");
  EXPECT_EQ(failed.finish_reason, RequestFinishReason::kAbort);
  EXPECT_EQ(streams[0]->error(), "the step failed");
  // A stream that had already finished keeps its own end.
  EXPECT_EQ(take(*streams[1]).finish_reason, RequestFinishReason::kStop);
  EXPECT_EQ(streams[1]->error(), "");
}

TEST_P(StreamDelivererTest, DestructionDeliversEverythingQueued) {
  auto streams = make_streams(64);
  {
    StreamDeliverer deliverer(GetParam());
    StreamDeliverer::Batch batch;
    for (int step = 0; step < 100; ++step) {
      for (auto& s : streams) batch.push_back({s, output(s->id(), "x", step == 99)});
      deliverer.hand_over(batch);
    }
  }  // no flush: the destructor drains the queue
  for (auto& s : streams) {
    const RequestOutput all = take(*s);
    EXPECT_EQ(all.text, std::string(100, 'x'));
    EXPECT_TRUE(all.finished());
  }
}

TEST_P(StreamDelivererTest, OneBatchFeedsManyStreamsAndWakesTheirConsumer) {
  constexpr int kStreams = 300;
  StreamSet set;
  std::vector<std::shared_ptr<RequestStream>> streams;
  for (int i = 0; i < kStreams; ++i) {
    streams.push_back(std::make_shared<RequestStream>(i, set.signal()));
    set.add(streams.back());
  }
  auto consumer = std::async(std::launch::async, [&] {
    std::vector<std::string> texts(kStreams);
    while (auto event = set.next(kForever)) texts[event->first] += event->second.text;
    return texts;
  });
  StreamDeliverer deliverer(GetParam());
  StreamDeliverer::Batch batch;
  for (auto& s : streams)
    batch.push_back({s, output(s->id(), "#" + std::to_string(s->id()), true)});
  deliverer.hand_over(batch);
  ASSERT_EQ(consumer.wait_for(kForever), std::future_status::ready);
  const std::vector<std::string> texts = consumer.get();
  for (int i = 0; i < kStreams; ++i) EXPECT_EQ(texts[i], "#" + std::to_string(i));
  EXPECT_TRUE(set.all_done());
}

TEST_P(StreamDelivererTest, KeepsAStreamAliveAfterItsOwnerLetsGo) {
  StreamDeliverer deliverer(GetParam());
  StreamDeliverer::Batch batch;
  auto stream = std::make_shared<RequestStream>(1);
  std::weak_ptr<RequestStream> watch = stream;
  batch.push_back({std::move(stream), output(1, "done", true)});  // the engine erases its copy
  deliverer.hand_over(batch);
  deliverer.flush();
  EXPECT_TRUE(watch.expired());  // delivered, then released by the deliverer
}

TEST(StreamDeliverer, InlineDeliversBeforeHandOverReturns) {
  StreamDeliverer deliverer(false);
  EXPECT_FALSE(deliverer.threaded());
  auto stream = std::make_shared<RequestStream>(4);
  StreamDeliverer::Batch batch;
  batch.push_back({stream, output(4, "now", true)});
  deliverer.hand_over(batch);
  EXPECT_EQ(take(*stream).text, "now");
}

}  // namespace
}  // namespace shardlm
