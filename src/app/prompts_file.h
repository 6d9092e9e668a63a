// Reads a batch of prompts for `generate --prompts-file`: one prompt per line, or JSON Lines with a
// "prompt" string per line (blank lines skipped).
#pragma once

#include <string>
#include <vector>

namespace shardlm::app {

std::vector<std::string> read_prompts_file(const std::string& path);

}  // namespace shardlm::app
