"""A tiny random-weight Llama with its own word-level tokenizer, for vLLM runs without network."""

import json
import shutil
import sys
from pathlib import Path

import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

root = Path(sys.argv[1])
tiny = root / "tiny-llama"
special = ["<unk>", "<s>", "</s>", "<pad>"]
vocab = {tok: i for i, tok in enumerate(special)}
for i in range(1024 - len(special)):
    vocab[f"w{i}"] = len(vocab)
tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
tok.pre_tokenizer = pre_tokenizers.Whitespace()
fast = PreTrainedTokenizerFast(
    tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>", pad_token="<pad>"
)
cfg = LlamaConfig(
    vocab_size=1024,
    hidden_size=256,
    intermediate_size=512,
    num_hidden_layers=2,
    num_attention_heads=8,
    num_key_value_heads=8,
    max_position_embeddings=2048,
    bos_token_id=1,
    eos_token_id=2,
    pad_token_id=3,
    torch_dtype="bfloat16",
)
torch.manual_seed(0)
model = LlamaForCausalLM(cfg).to(torch.bfloat16)
model.save_pretrained(tiny, safe_serialization=True)
fast.save_pretrained(tiny)
# the same checkpoint, its config declaring fp8 weights (as an FP8 export would)
fp8 = root / "tiny-llama-fp8cfg"
shutil.copytree(tiny, fp8, dirs_exist_ok=True)
c = json.loads((fp8 / "config.json").read_text())
c["quantization_config"] = {"quant_method": "fp8", "activation_scheme": "dynamic"}
(fp8 / "config.json").write_text(json.dumps(c, indent=2))
for p in sorted(root.rglob("*")):
    print(p, p.stat().st_size if p.is_file() else "")
