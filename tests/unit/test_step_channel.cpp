// The master's step messages to every worker (step_channel.h) and Gloo's isend under them: the
// master sends several steps and interleaved stage sends without waiting for a worker that has
// not posted its receives yet, and the worker reads them all, in order, afterwards.
#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <thread>

#include "comm/gloo_communicator.h"
#include "comm/store.h"
#include "parallel/step_channel.h"

namespace shardlm::parallel {
namespace {

ForwardBatch batch_of(int32_t first_token, int n) {
  ForwardBatch b;
  std::vector<int32_t> tokens(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) tokens[static_cast<size_t>(i)] = first_token + i;
  b.add_sequence(tokens, 0, {0, 1, 2}, 16, false);
  return b;
}

TEST(StepChannel, MasterSendsStepsWithoutWaitingAndTheWorkerReadsThemInOrder) {
  comm::StoreServer server("127.0.0.1", 0, "t");
  const auto timeout = std::chrono::milliseconds(10000);
  std::promise<void> master_done;
  auto worker = std::async(std::launch::async, [&] {
    comm::StoreClient store("127.0.0.1", server.port(), "t", timeout);
    comm::GlooCommunicator world(store, "steps/", 1, 2, timeout);
    // Receive nothing until the master has sent everything: its sends must not have waited.
    master_done.get_future().wait();
    std::vector<std::pair<ForwardBatch, float>> got;
    while (true) {
      StepMessage m = receive_step(world);
      if (m.kind == StepKind::kShutdown) break;
      float hidden = 0;
      world.recv(&hidden, 1, 0);  // a stage send that followed the step's message
      got.emplace_back(std::move(m.batch), hidden);
    }
    return got;
  });
  comm::StoreClient store("127.0.0.1", server.port(), "t", timeout);
  comm::GlooCommunicator world(store, "steps/", 0, 2, timeout);
  {
    StepSender sender(world, 3);
    SendRing hidden(8);
    const auto start = std::chrono::steady_clock::now();
    for (int step = 0; step < 3; ++step) {
      sender.send({StepKind::kForward, batch_of(10 * step, step + 1)});
      *hidden.next(1) = 0.5f + static_cast<float>(step);
      hidden.send(world, 1, 1);
    }
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
    master_done.set_value();
    sender.send_and_wait({StepKind::kShutdown, {}});
  }
  const auto got = worker.get();
  ASSERT_EQ(got.size(), 3u);
  for (int step = 0; step < 3; ++step) {
    EXPECT_EQ(got[static_cast<size_t>(step)].first.tokens, batch_of(10 * step, step + 1).tokens);
    EXPECT_EQ(got[static_cast<size_t>(step)].second, 0.5f + static_cast<float>(step));
  }
}

}  // namespace
}  // namespace shardlm::parallel
