// tokenize_gguf.mjs: how llama.cpp (node-llama-cpp's prebuilt CPU build)
// tokenises text with a GGUF file's vocabulary, and what it warns about.
//
//   node tokenize_gguf.mjs MODEL.gguf < texts.json
//
// texts.json is a JSON array of strings. It loads only the vocabulary,
// tokenises each text as llama.cpp's tools do (special tokens parsed, BOS
// prepended when the vocabulary asks for it), detokenises the result, and
// prints {ids, texts, warnings}: warnings are llama.cpp's log lines at
// warning level or above while loading, then node-llama-cpp's own checks of
// the model (model.getWarnings(): a text that does not survive tokenising
// and detokenising, ...). node-llama-cpp is found as load_gguf.mjs finds it.
import {readFileSync} from "node:fs";
import {createRequire} from "node:module";
import path from "node:path";
import {fileURLToPath, pathToFileURL} from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const dir = process.env.COGUMI_NODE_LLAMA || path.resolve(here, "..", "..", "..", "testdata", "llama");
const entry = createRequire(path.join(dir, "package.json")).resolve("node-llama-cpp");
const {getLlama, LlamaLogLevel} = await import(pathToFileURL(entry).href);

const texts = JSON.parse(readFileSync(0, "utf8"));
const warnings = [];
const llama = await getLlama({
    gpu: false, build: "never", progressLogs: false, logLevel: LlamaLogLevel.warn,
    logger: (level, message) => {
        if ([LlamaLogLevel.warn, LlamaLogLevel.error, LlamaLogLevel.fatal].includes(level)) warnings.push(message.trim());
    },
});
const model = await llama.loadModel({modelPath: process.argv[2], vocabOnly: true});
const ids = [], back = [];
for (const text of texts) {
    const tokens = model.tokenize(text, true);
    back.push(model.detokenize(tokens, false));
    if (model.tokens.shouldPrependBosToken && model.tokens.bos != null) tokens.unshift(model.tokens.bos);
    ids.push(tokens);
}
warnings.push(...model.getWarnings());
await model.dispose();
await llama.dispose();
process.stdout.write(JSON.stringify({ids, texts: back, warnings}) + "\n", () => process.exit(0));
