// StepProfile: per-phase wall time of engine steps and its report.
#include "engine/step_profile.h"

#include <fmt/format.h>

#include <cstdio>

#include "core/env_flag.h"

namespace shardlm {

namespace {

constexpr std::array<const char*, StepProfile::kPhases> kNames = {
    "schedule", "prepare", "forward", "postprocess", "outputs", "deliver", "between"};

}  // namespace

StepProfile::StepProfile() : StepProfile(env_flag("SHARDLM_STEP_PROFILE", false)) {}

StepProfile::~StepProfile() {
  const std::string r = report();
  if (!r.empty()) std::fprintf(stderr, "%s", r.c_str());
}

void StepProfile::begin_step() {
  if (!enabled_) return;
  const Clock::time_point now = Clock::now();
  if (open_) {
    current_[kBetween] += std::chrono::duration<double>(now - last_).count();
    close_step();
  }
  last_ = now;
  open_ = true;
}

void StepProfile::mark(Phase p) {
  if (!enabled_ || !open_) return;
  const Clock::time_point now = Clock::now();
  current_[p] += std::chrono::duration<double>(now - last_).count();
  last_ = now;
}

void StepProfile::describe_step(bool has_prefill, int n_tokens, int n_seqs) {
  current_prefill_ = has_prefill;
  current_tokens_ = n_tokens;
  current_seqs_ = n_seqs;
}

void StepProfile::close_step() {
  Totals& t = current_prefill_ ? mixed_ : decode_;
  ++t.steps;
  t.tokens += current_tokens_;
  t.seqs += current_seqs_;
  for (int p = 0; p < kPhases; ++p) t.seconds[p] += current_[p];
  current_ = {};
  current_prefill_ = false;
  current_tokens_ = current_seqs_ = 0;
}

std::string StepProfile::report() const {
  if (!enabled_ || decode_.steps + mixed_.steps == 0) return "";
  std::string out = "\nengine step profile (SHARDLM_STEP_PROFILE), ms per step:\n";
  out += fmt::format("{:<16} {:>7} {:>8} {:>6}", "steps", "count", "tokens", "seqs");
  for (const char* n : kNames) out += fmt::format(" {:>11}", n);
  out += fmt::format(" {:>9}\n", "total");
  for (const auto& [name, t] : {std::pair{"decode only", &decode_}, {"with prefill", &mixed_}}) {
    if (t->steps == 0) continue;
    const auto n = static_cast<double>(t->steps);
    out +=
        fmt::format("{:<16} {:>7} {:>8.1f} {:>6.1f}", name, t->steps, t->tokens / n, t->seqs / n);
    double total = 0;
    for (double s : t->seconds) {
      out += fmt::format(" {:>11.3f}", 1e3 * s / n);
      total += s;
    }
    out += fmt::format(" {:>9.3f}\n", 1e3 * total / n);
  }
  return out;
}

}  // namespace shardlm
