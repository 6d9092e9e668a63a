// `shardlm tokenize` prints token ids as a JSON array; `shardlm detokenize` prints the text.
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "app/commands.h"
#include "app/model_session.h"
#include "core/error.h"

namespace shardlm::app {

namespace {

struct TokenizeOptions {
  std::string model, text, file, ids;
  bool no_special = false;
};

void run_tokenize(const TokenizeOptions& o) {
  if (o.text.empty() && o.file.empty()) fail("give --text TEXT or --file FILE");
  if (!o.text.empty() && !o.file.empty()) fail("give only one of --text and --file");
  std::string text = o.text;
  if (!o.file.empty()) {
    std::ifstream in(o.file, std::ios::binary);
    if (!in) fail("cannot read --file '{}'", o.file);
    std::stringstream ss;
    ss << in.rdbuf();
    text = ss.str();
  }
  const auto model = open_model(o.model);
  const auto tok = open_tokenizer(*model);
  std::cout << nlohmann::json(tok->encode(text, !o.no_special, true)).dump() << "\n";
}

void run_detokenize(const TokenizeOptions& o) {
  const auto j = nlohmann::json::parse(o.ids, nullptr, false);
  if (j.is_discarded() || !j.is_array())
    fail("--ids must be a JSON array of token ids, e.g. [1, 2, 3]");
  const auto model = open_model(o.model);
  const auto tok = open_tokenizer(*model);
  std::vector<int32_t> ids;
  for (const auto& v : j) {
    if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() >= tok->vocab_size()) {
      fail("--ids holds {}, which is not a token id (0 to {})", v.dump(), tok->vocab_size() - 1);
    }
    ids.push_back(v.get<int32_t>());
  }
  std::cout << tok->decode(ids, o.no_special) << std::flush;
}

}  // namespace

void add_tokenize_commands(CLI::App& app) {
  auto o = std::make_shared<TokenizeOptions>();
  CLI::App* tok = app.add_subcommand("tokenize", "print the token ids of a text as a JSON array");
  tok->add_option("-m,--model", o->model, "GGUF file or Hugging Face model directory");
  tok->add_option("--text", o->text, "text to tokenize");
  tok->add_option("--file", o->file, "file holding the text");
  tok->add_flag("--no-special", o->no_special, "do not add BOS/EOS tokens");
  tok->callback([o] { run_tokenize(*o); });

  CLI::App* det = app.add_subcommand("detokenize", "print the text of a JSON array of token ids");
  det->add_option("-m,--model", o->model, "GGUF file or Hugging Face model directory");
  det->add_option("--ids", o->ids, "token ids as a JSON array")->required();
  det->add_flag("--skip-special", o->no_special, "drop special tokens from the text");
  det->callback([o] { run_detokenize(*o); });
}

}  // namespace shardlm::app
