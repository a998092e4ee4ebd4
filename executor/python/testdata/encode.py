"""Prints the ids cogumi's torch runtime gives texts, BOS first as the
rules use them: python3 encode.py CHECKPOINT_DIR < {"texts": [...]}
prints {"ids": [[...], ...]}. (cogumi_llama.load_tokenizer is this
tokenizer; importing it alone spares the tests torch's start-up.) With
COGUMI_TORCH_BACKEND=transformers, the transformers backend's tokenizer;
with COGUMI_ENCODE_AUTOTOKENIZER=1 as well, AutoTokenizer's own encoding
(what the backend does not use where a tokenizer.json exists: recorded
beside the golden values to show where the two differ)."""

import json
import os
import sys

d = sys.argv[1]
if os.environ.get("COGUMI_TORCH_BACKEND") == "transformers":
    import cogumi_hf
    tok = cogumi_hf.load_tokenizer(d)
    if os.environ.get("COGUMI_ENCODE_AUTOTOKENIZER") == "1":
        tok.pipeline = None
else:
    import cogumi_tokenizer
    tok = cogumi_tokenizer.load(d, {})
texts = json.load(sys.stdin)["texts"]
ids = [([tok.bos] if tok.bos is not None else []) + tok.encode(t) for t in texts]
print(json.dumps({"ids": ids}))
