// shardlm_tiny_model: writes a tiny deterministic model (tests/support/tiny_model.h) for the
// end-to-end tests, which need a model whose heads, KV heads, FFN width and vocabulary split over
// two tensor-parallel ranks (the default model's 9 heads do not), and for
// scripts/gen_logit_refs.py, which has transformers load the reference MoE checkpoints.
//
//   shardlm_tiny_model OUT [--layers N] [--arch
//   llama|qwen2|qwen3|mistral|qwen3_moe|qwen2_moe|mixtral]
//                          [--hf] [--untied] [--reference NAME] [--fp8 FORMAT]
//                          [--dequantised DIR]
//
// OUT is a Q8_0 GGUF file, or with --hf a Hugging Face directory (BF16 safetensors). --untied
// gives the model its own output projection (tied tiny models mostly repeat their last token).
// --fp8 writes a Hugging Face FP8 checkpoint (tiny_fp8_model.h; FORMAT fbgemm_fp8,
// compressed_tensors_channel, compressed_tensors_tensor, fp8_tensor, fp8_block or
// compressed_tensors_block), and with --dequantised DIR the same model in BF16 with each FP8 matrix
// dequantised (codes times scales) to DIR.
// --reference writes exactly the spec of a committed reference (tiny_model.h's reference lists) and
// ignores
// --layers and --arch.
#include <cstdio>
#include <cstdlib>
#include <string>

#include "core/error.h"
#include "tiny_fp8_model.h"
#include "tiny_model.h"

namespace {

using shardlm::testing::TinyModelSpec;

bool find_reference(const std::string& name, TinyModelSpec& spec) {
  for (const auto& list :
       {shardlm::testing::reference_tiny_models(), shardlm::testing::reference_tiny_moe_models(),
        shardlm::testing::reference_tiny_mla_models()}) {
    for (const auto& [n, s] : list) {
      if (n == name) {
        spec = s;
        return true;
      }
    }
  }
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || argv[1][0] == '-') {  // `--help` is not a path to write a model to
    std::fprintf(stderr,
                 "usage: %s OUT [--layers N] [--arch NAME] [--hf] [--untied] [--reference NAME] "
                 "[--fp8 FORMAT]\n",
                 argv[0]);
    return 2;
  }
  int layers = 4;
  std::string arch = "llama", reference, fp8, dequantised;
  bool hf = false, untied = false;
  for (int i = 2; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--hf") {
      hf = true;
    } else if (flag == "--untied") {
      untied = true;
    } else if (i + 1 < argc && flag == "--layers") {
      layers = std::atoi(argv[++i]);
    } else if (i + 1 < argc && flag == "--arch") {
      arch = argv[++i];
    } else if (i + 1 < argc && flag == "--fp8") {
      fp8 = argv[++i];
    } else if (i + 1 < argc && flag == "--dequantised") {
      dequantised = argv[++i];
    } else if (i + 1 < argc && flag == "--reference") {
      reference = argv[++i];
    } else {
      std::fprintf(stderr, "unknown flag %s\n", flag.c_str());
      return 2;
    }
  }
  TinyModelSpec spec;
  if (!reference.empty()) {
    if (!find_reference(reference, spec)) {
      std::fprintf(stderr, "no reference model '%s'\n", reference.c_str());
      return 2;
    }
  } else {
    if (arch == "qwen3_moe" || arch == "qwen2_moe" || arch == "mixtral" || arch == "deepseek_v2" ||
        arch == "deepseek_v3" || arch == "ernie4_5_moe") {
      spec = shardlm::testing::tiny_moe_spec(arch);
    }
    spec.arch = arch;
    spec.ffn_dim = 128;  // each half of the down projection is whole Q8_0 blocks
    spec.n_layers = layers;
    spec.context = 512;
    if (untied) spec.tied = false;
  }
  try {
    if (!fp8.empty()) {
      for (auto f : shardlm::testing::all_fp8_formats()) {
        if (shardlm::testing::fp8_format_name(f) != fp8) continue;
        shardlm::testing::write_tiny_fp8_hf_model(argv[1], spec, f, dequantised);
        return 0;
      }
      std::fprintf(stderr, "unknown --fp8 format %s\n", fp8.c_str());
      return 2;
    } else if (hf) {
      shardlm::testing::write_tiny_hf_model(argv[1], spec);
    } else {
      shardlm::testing::write_tiny_gguf_model(argv[1], spec, shardlm::DType::Q8_0);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  return 0;
}
