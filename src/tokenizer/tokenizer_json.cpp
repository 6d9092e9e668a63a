// Maps tokenizer.json's model / normalizer / pre_tokenizer / post_processor sections onto the few
// shapes shardlm supports: byte-level BPE behind regex splits (GPT-2, SmolLM, Llama 3, Qwen2) and
// SentencePiece-style BPE with "▁" and byte fallback (Llama 2, TinyLlama, Mistral).
#include "tokenizer/tokenizer_json.h"

#include <spdlog/spdlog.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "tokenizer/pre_tokenizer.h"

namespace shardlm {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

constexpr const char* kSpaceMark = "\xE2\x96\x81";  // "▁"

json read_json(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("cannot open {}: check that the path is right and readable", path.string());
  try {
    return json::parse(in);
  } catch (const json::exception& e) {
    fail("{} is not valid JSON: {}", path.string(), e.what());
  }
}

bool is_null_or_empty(const json& j) {
  return j.is_null() || (j.is_string() && j.get<std::string>().empty());
}

// What the normalizer / pre_tokenizer / decoder sections say, gathered before filling the spec.
struct Shape {
  bool byte_level = false;
  bool sentencepiece = false;  // "▁" for spaces
  std::vector<std::string> regexes;
};

class Loader {
 public:
  explicit Loader(fs::path file) : file_(std::move(file)) {}

  TokenizerSpec load() {
    const json root = read_json(file_);
    read_model(at(root, "model"));
    read_added_tokens(root.value("added_tokens", json::array()));
    read_normalizer(root.value("normalizer", json()));
    read_pre_tokenizer(root.value("pre_tokenizer", json()));
    read_decoder(root.value("decoder", json()));
    decide_kind();
    read_post_processor(root.value("post_processor", json()));
    read_configs();
    return std::move(spec_);
  }

 private:
  [[noreturn]] void unsupported(const std::string& what) const {
    fail(
        "{}: {} is not supported; shardlm reads byte-level BPE (GPT-2, SmolLM, Llama 3, Qwen2) and "
        "SentencePiece-style BPE (Llama 2, Mistral) tokenizers. Convert the model to GGUF with "
        "llama.cpp, or use a model with one of those tokenizers",
        file_.string(), what);
  }

  const json& at(const json& j, const char* key) const {
    if (!j.is_object() || !j.contains(key)) fail("{}: missing \"{}\"", file_.string(), key);
    return j.at(key);
  }

  void read_model(const json& model) {
    const std::string type = model.value("type", "BPE");
    if (type != "BPE") unsupported("model type \"" + type + "\"");
    if (!is_null_or_empty(model.value("continuing_subword_prefix", json())) ||
        !is_null_or_empty(model.value("end_of_word_suffix", json()))) {
      unsupported("a BPE model with continuing_subword_prefix/end_of_word_suffix");
    }
    const json dropout = model.value("dropout", json());
    if (!dropout.is_null() && dropout.get<double>() != 0.0) unsupported("BPE dropout");
    const json& vocab = at(model, "vocab");
    if (!vocab.is_object()) fail("{}: model.vocab is not an object", file_.string());
    for (const auto& [text, id_json] : vocab.items()) set_token(id_json.get<int64_t>(), text);
    for (const auto& merge : at(model, "merges")) {
      if (merge.is_string()) {
        spec_.merges.push_back(merge.get<std::string>());
      } else if (merge.is_array() && merge.size() == 2) {
        spec_.merges.push_back(merge[0].get<std::string>() + " " + merge[1].get<std::string>());
      } else {
        fail("{}: model.merges holds an entry that is neither \"a b\" nor [\"a\", \"b\"]",
             file_.string());
      }
    }
    spec_.byte_fallback = model.value("byte_fallback", false);
    spec_.ignore_merges = model.value("ignore_merges", false);
    if (const json unk = model.value("unk_token", json()); unk.is_string()) {
      unk_text_ = unk.get<std::string>();
    }
  }

  void set_token(int64_t id, const std::string& text) {
    if (id < 0 || id > (1 << 24))
      fail("{}: token id {} of '{}' is out of range", file_.string(), id, text);
    if (static_cast<size_t>(id) >= spec_.tokens.size()) {
      spec_.tokens.resize(id + 1);
      spec_.token_types.resize(id + 1, TokenType::kUnused);  // holes stay unused
    }
    spec_.tokens[id] = text;
    spec_.token_types[id] = TokenType::kNormal;
  }

  void read_added_tokens(const json& added) {
    size_t with_flags = 0;
    for (const auto& token : added) {
      const int64_t id = at(token, "id").get<int64_t>();
      set_token(id, at(token, "content").get<std::string>());
      spec_.token_types[id] =
          token.value("special", false) ? TokenType::kControl : TokenType::kUserDefined;
      if (token.value("lstrip", false) || token.value("rstrip", false) ||
          token.value("single_word", false)) {
        ++with_flags;
      }
    }
    if (with_flags > 0) {
      spdlog::warn(
          "{}: {} added tokens ask for lstrip/rstrip/single_word matching, which shardlm "
          "ignores; text right next to them may tokenize differently from Hugging Face",
          file_.string(), with_flags);
    }
  }

  void read_normalizer(const json& n) {
    if (n.is_null()) return;
    const std::string type = n.value("type", "");
    if (type == "Sequence") {
      for (const auto& item : at(n, "normalizers")) read_normalizer(item);
    } else if (type == "NFC") {
      spec_.normalize_nfc = true;
    } else if (type == "Prepend" && n.value("prepend", "") == kSpaceMark) {
      shape_.sentencepiece = true;
      spec_.add_space_prefix = true;
      spec_.space_prefix_mode = SpacePrefixMode::kEverySegment;
    } else if (type == "Replace" && replace_pattern(n) == " " &&
               n.value("content", "") == kSpaceMark) {
      shape_.sentencepiece = true;
    } else {
      unsupported("normalizer " + n.dump());
    }
  }

  static std::string replace_pattern(const json& n) {
    const json pattern = n.value("pattern", json());
    return pattern.is_object() && pattern.contains("String") ? pattern["String"].get<std::string>()
                                                             : std::string();
  }

  void read_pre_tokenizer(const json& p) {
    if (p.is_null()) return;
    if (shape_.byte_level) unsupported("a pre-tokenizer after ByteLevel");
    const std::string type = p.value("type", "");
    if (type == "Sequence") {
      for (const auto& item : at(p, "pretokenizers")) read_pre_tokenizer(item);
    } else if (type == "ByteLevel") {
      shape_.byte_level = true;
      if (p.value("add_prefix_space", false)) spec_.add_space_prefix = true;
      if (p.value("use_regex", true)) shape_.regexes.push_back(patterns::kGpt2);
    } else if (type == "Split") {
      read_split(p);
    } else if (type == "Digits") {
      shape_.regexes.push_back(p.value("individual_digits", false) ? patterns::kDigit
                                                                   : patterns::kDigits);
    } else if (type == "Metaspace") {
      read_metaspace(p);
    } else {
      unsupported("pre-tokenizer " + p.dump());
    }
  }

  void read_split(const json& p) {
    const json& pattern = at(p, "pattern");
    if (!pattern.is_object() || !pattern.contains("Regex")) {
      unsupported("a Split pre-tokenizer without a regex pattern");
    }
    const std::string behavior = p.value("behavior", "Isolated");
    if (behavior != "Isolated" || p.value("invert", false)) {
      unsupported("a Split pre-tokenizer with behavior " + behavior +
                  (p.value("invert", false) ? " inverted" : ""));
    }
    shape_.regexes.push_back(pattern["Regex"].get<std::string>());
  }

  void read_metaspace(const json& p) {
    if (p.value("replacement", kSpaceMark) != kSpaceMark)
      unsupported("a Metaspace replacement other than ▁");
    if (p.value("split", true)) unsupported("a Metaspace pre-tokenizer with split=true");
    shape_.sentencepiece = true;
    std::string scheme = p.value("prepend_scheme", "");
    if (scheme.empty()) scheme = p.value("add_prefix_space", true) ? "always" : "never";
    spec_.add_space_prefix = scheme != "never";
    spec_.space_prefix_mode = scheme == "first" ? SpacePrefixMode::kFirstSegmentUnlessSpace
                                                : SpacePrefixMode::kEverySegmentUnlessSpace;
  }

  void read_decoder(const json& d) {
    if (d.is_null()) return;
    const std::string type = d.value("type", "");
    if (type == "Sequence") {
      for (const auto& item : at(d, "decoders")) read_decoder(item);
    } else if (type == "ByteLevel") {
      shape_.byte_level = true;
    }
  }

  void decide_kind() {
    if (shape_.byte_level && shape_.sentencepiece) {
      unsupported("a tokenizer that is both byte-level and SentencePiece-style");
    }
    if (shape_.byte_level) {
      spec_.kind = TokenizerKind::kByteLevelBpe;
      name_pre_tokenizer();
    } else if (shape_.sentencepiece || spec_.byte_fallback) {
      spec_.kind = TokenizerKind::kSentencePieceBpe;
      if (!shape_.regexes.empty())
        unsupported("Split/Digits pre-tokenizers on a SentencePiece BPE");
      mark_byte_tokens();
    } else {
      unsupported("a BPE tokenizer that is neither byte-level nor SentencePiece-style");
    }
    if (!unk_text_.empty()) {
      spec_.unk_id = find(unk_text_);
      if (!spec_.unk_id)
        fail("{}: unk_token '{}' is not in the vocabulary", file_.string(), unk_text_);
      spec_.token_types[*spec_.unk_id] = spec_.token_types[*spec_.unk_id] == TokenType::kControl
                                             ? TokenType::kUnknown
                                             : spec_.token_types[*spec_.unk_id];
    }
  }

  void name_pre_tokenizer() {
    const auto& r = shape_.regexes;
    for (const char* name :
         {"gpt2", "smollm", "llama-bpe", "qwen2", "deepseek-v3", "deepseek-llm"}) {
      if (r == PreTokenizer::regexes_for(name)) {
        spec_.pre = name;
        return;
      }
    }
    if (r.empty()) unsupported("a byte-level BPE without any pre-tokenizer regex");
    spec_.pre = "custom";
    spec_.pre_regexes = r;
  }

  void mark_byte_tokens() {
    for (size_t id = 0; id < spec_.tokens.size(); ++id) {
      const std::string& t = spec_.tokens[id];
      if (spec_.token_types[id] == TokenType::kNormal && t.size() == 6 && t.rfind("<0x", 0) == 0 &&
          t[5] == '>') {
        spec_.token_types[id] = TokenType::kByte;
      }
    }
  }

  void read_post_processor(const json& p) {
    if (p.is_null()) return;
    const std::string type = p.value("type", "");
    if (type == "Sequence") {
      for (const auto& item : at(p, "processors")) read_post_processor(item);
    } else if (type == "TemplateProcessing") {
      read_template(p);
    } else if (type != "ByteLevel") {
      unsupported("post-processor " + type);
    }
  }

  // "<s> $A" -> add BOS; "$A </s>" -> add EOS.
  void read_template(const json& p) {
    template_seen_ = true;
    const json& single = at(p, "single");
    bool after_sequence = false;
    for (const auto& piece : single) {
      if (piece.contains("Sequence")) {
        after_sequence = true;
        continue;
      }
      const std::string name = at(at(piece, "SpecialToken"), "id").get<std::string>();
      const json& ids = at(at(at(p, "special_tokens"), name.c_str()), "ids");
      if (ids.size() != 1) unsupported("a post-processor template token with several ids");
      const int32_t id = ids[0].get<int32_t>();
      if (after_sequence) {
        spec_.add_eos = true;
        spec_.eos_id = spec_.eos_id.value_or(id);
      } else {
        spec_.add_bos = true;
        spec_.bos_id = id;
      }
    }
  }

  std::optional<int32_t> find(const std::string& text) const {
    for (size_t id = 0; id < spec_.tokens.size(); ++id) {
      if (spec_.tokens[id] == text && spec_.token_types[id] != TokenType::kUnused) {
        return static_cast<int32_t>(id);
      }
    }
    return std::nullopt;
  }

  // A tokenizer_config.json token entry: "<s>" or {"content": "<s>", ...}.
  std::optional<int32_t> config_token(const json& config, const char* key,
                                      const fs::path& path) const {
    const json entry = config.value(key, json());
    std::string text;
    if (entry.is_string())
      text = entry.get<std::string>();
    else if (entry.is_object() && entry.contains("content"))
      text = entry["content"].get<std::string>();
    else
      return std::nullopt;
    const auto id = find(text);
    if (!id)
      fail("{}: {} '{}' is not in the vocabulary of {}", path.string(), key, text, file_.string());
    return id;
  }

  void read_configs() {
    const fs::path config_path = file_.parent_path() / "tokenizer_config.json";
    if (fs::exists(config_path)) {
      const json config = read_json(config_path);
      if (const auto id = config_token(config, "bos_token", config_path)) spec_.bos_id = id;
      if (const auto id = config_token(config, "eos_token", config_path)) spec_.eos_id = id;
      if (const auto id = config_token(config, "pad_token", config_path)) spec_.pad_id = id;
      if (!template_seen_) {  // the template, when there is one, is what HF applies
        spec_.add_bos = config.value("add_bos_token", false) && spec_.bos_id;
        spec_.add_eos = config.value("add_eos_token", false) && spec_.eos_id;
      }
    }
    const fs::path generation_path = file_.parent_path() / "generation_config.json";
    if (fs::exists(generation_path)) {
      const json eos = read_json(generation_path).value("eos_token_id", json());
      for (const auto& id : eos.is_array() ? eos : json::array({eos})) {
        if (id.is_number_integer()) add_extra_eos(id.get<int32_t>());
      }
    }
    // Ends of turn that chat templates emit, as llama.cpp also treats them.
    for (const char* text : {"<|im_end|>", "<|eot_id|>", "<|end_of_text|>", "<|endoftext|>", "</s>",
                             "<end_of_turn>"}) {
      if (const auto id = find(text); id && spec_.token_types[*id] == TokenType::kControl)
        add_extra_eos(*id);
    }
  }

  void add_extra_eos(int32_t id) {
    if (id < 0 || static_cast<size_t>(id) >= spec_.tokens.size()) return;
    if (spec_.eos_id == id) return;
    if (std::find(spec_.extra_eos_ids.begin(), spec_.extra_eos_ids.end(), id) ==
        spec_.extra_eos_ids.end()) {
      spec_.extra_eos_ids.push_back(id);
    }
  }

  fs::path file_;
  TokenizerSpec spec_;
  Shape shape_;
  std::string unk_text_;
  bool template_seen_ = false;
};

}  // namespace

TokenizerSpec load_tokenizer_json(const std::string& dir_or_file) {
  fs::path path(dir_or_file);
  if (!fs::exists(path)) {
    fail("{} does not exist: give a Hugging Face model directory or its tokenizer.json",
         dir_or_file);
  }
  if (fs::is_directory(path)) path /= "tokenizer.json";
  if (!fs::exists(path)) {
    fail("{} not found: a Hugging Face model directory needs its tokenizer.json", path.string());
  }
  try {
    return Loader(path).load();
  } catch (const json::exception& e) {
    fail("{}: unexpected structure: {}", path.string(), e.what());
  }
}

}  // namespace shardlm
