// Prompts file parsing with errors that name the file and line.
#include "app/prompts_file.h"

#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"

namespace shardlm::app {

std::vector<std::string> read_prompts_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("cannot read --prompts-file '{}'", path);
  std::vector<std::string> prompts;
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    if (line.front() != '{') {
      prompts.push_back(line);
      continue;
    }
    const auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("prompt") || !j["prompt"].is_string()) {
      fail("'{}' line {}: a JSON line needs a \"prompt\" string, e.g. {{\"prompt\": \"Hello\"}}",
           path, number);
    }
    prompts.push_back(j["prompt"].get<std::string>());
  }
  if (prompts.empty()) fail("'{}' holds no prompts", path);
  return prompts;
}

}  // namespace shardlm::app
