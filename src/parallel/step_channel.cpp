// StepSender and receive_step: length header, then the message as whole floats.
#include "parallel/step_channel.h"

#include <cstring>

namespace shardlm::parallel {

namespace {
size_t floats_for(size_t bytes) {
  return (bytes + sizeof(float) - 1) / sizeof(float);
}
}  // namespace

StepSender::StepSender(comm::Communicator& world, int steps_in_flight)
    : world_(world),
      // Two sends per worker per step, for every step in flight, a heartbeat, and one to fill.
      ring_(static_cast<size_t>(2 * std::max(1, world.size() - 1) * (steps_in_flight + 2) + 1)) {}

void StepSender::send(const StepMessage& m) {
  const std::vector<char> bytes = encode_step(m);
  const auto length = static_cast<uint32_t>(bytes.size());
  const size_t n = floats_for(bytes.size());
  for (int r = 1; r < world_.size(); ++r) {
    float* header = ring_.next(1);
    std::memcpy(header, &length, sizeof length);
    ring_.send(world_, 1, r);
    float* body = ring_.next(n);
    std::memcpy(body, bytes.data(), bytes.size());
    ring_.send(world_, n, r);
  }
}

void StepSender::send_and_wait(const StepMessage& m) {
  send(m);
  ring_.wait_all();
}

StepMessage receive_step(comm::Communicator& world) {
  float header = 0;
  world.recv(&header, 1, 0);
  uint32_t length = 0;
  std::memcpy(&length, &header, sizeof length);
  std::vector<float> body(floats_for(length));
  world.recv(body.data(), body.size(), 0);
  std::vector<char> bytes(length);
  std::memcpy(bytes.data(), body.data(), length);
  return decode_step(bytes);
}

}  // namespace shardlm::parallel
