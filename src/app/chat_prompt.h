// Builds a chat prompt for one user message with the model's chat template (or the documented
// ChatML default when the model ships none).
#pragma once

#include <string>

#include "model/model.h"

namespace shardlm::app {

std::string build_chat_prompt(const Model& model, const std::string& user_message);

}  // namespace shardlm::app
