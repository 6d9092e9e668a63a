// Builds a chat prompt for one user message with the model's chat template (or the documented
// ChatML default when the model ships none).
#pragma once

#include <string>
#include <vector>

#include "model/model.h"

namespace shardlm::app {

// One prompt per user message; the template is compiled once for the whole list.
std::vector<std::string> build_chat_prompts(const Model& model,
                                            const std::vector<std::string>& user_messages);
std::string build_chat_prompt(const Model& model, const std::string& user_message);

}  // namespace shardlm::app
