// cogumi's llama.cpp runner: the negative log-likelihood of texts under a
// GGUF model, through node-llama-cpp.
//
//   node runner.mjs --model MODEL.gguf --input TEXTS.jsonl --output RESULT.json
//                   [--lora NAME=ADAPTER.gguf ...] [--threads N]
//
// TEXTS.jsonl holds one {"text": ..., "adapter": NAME} per line ("adapter"
// optional: the text is scored with that LoRA adapter applied). Each text is
// tokenised by llama.cpp (special tokens as plain text), BOS is prepended
// when the vocabulary has one, and the sequence is cut to the first
// MAX_TOKENS tokens (and to the model's training context), exactly as
// cogumi's torch runtime does. For every token but the first, the
// probability llama.cpp gives it after its prefix is read from the full
// vocabulary distribution (greedy sampler, no top-k: every token's
// softmax probability), and -log of it is summed.
//
// RESULT.json: {"runtime": "llama.cpp (node-llama-cpp 3.21.1)",
// "load_ms": ..., "results": [{"tokens": N, "nll": X, "ms": T}, ...]} in
// input order; tokens counts the predicted tokens and ms the time the
// evaluation of that text took, model loading excluded.
//
// node-llama-cpp is imported from $COGUMI_NODE_LLAMA, a directory holding
// node_modules/node-llama-cpp.
import {createRequire} from "node:module";
import fs from "node:fs";
import path from "node:path";
import {pathToFileURL} from "node:url";

const MAX_TOKENS = 4096;

function parseArgs(argv) {
    const o = {model: "", input: "", output: "", lora: new Map(), threads: 0};
    for (let i = 0; i < argv.length; i++) {
        const a = argv[i];
        const next = () => {
            if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
            return argv[++i];
        };
        if (a === "--model") o.model = next();
        else if (a === "--input") o.input = next();
        else if (a === "--output") o.output = next();
        else if (a === "--threads") o.threads = Number(next());
        else if (a === "--lora") {
            const v = next();
            const eq = v.indexOf("=");
            if (eq <= 0) throw new Error(`--lora wants NAME=FILE, not ${v}`);
            o.lora.set(v.slice(0, eq), v.slice(eq + 1));
        } else throw new Error(`unknown argument ${a}`);
    }
    if (!o.model || !o.input || !o.output) throw new Error("usage: runner.mjs --model MODEL.gguf --input TEXTS.jsonl --output RESULT.json [--lora NAME=FILE]");
    return o;
}

async function importNodeLlamaCpp() {
    const dir = process.env.COGUMI_NODE_LLAMA;
    if (!dir) throw new Error("COGUMI_NODE_LLAMA is not set (a directory holding node_modules/node-llama-cpp)");
    const req = createRequire(path.join(dir, "package.json"));
    let entry, pkg;
    try {
        entry = req.resolve("node-llama-cpp");
        // The package's exports hide package.json: find it above the entry.
        for (let d = path.dirname(entry); d !== path.dirname(d); d = path.dirname(d)) {
            const f = path.join(d, "package.json");
            if (!fs.existsSync(f)) continue;
            const j = JSON.parse(fs.readFileSync(f, "utf8"));
            if (j.name === "node-llama-cpp") {
                pkg = j;
                break;
            }
        }
        if (pkg == null) throw new Error(`no package.json above ${entry}`);
    } catch (err) {
        throw new Error(`node-llama-cpp not found under ${dir}: ${err.message}`);
    }
    return {mod: await import(pathToFileURL(entry).href), version: pkg.version};
}

function readInput(file) {
    const out = [];
    const lines = fs.readFileSync(file, "utf8").split("\n");
    lines.forEach((line, i) => {
        if (line.trim() === "") return;
        const row = JSON.parse(line);
        if (typeof row.text !== "string") throw new Error(`${file}:${i + 1}: no "text"`);
        out.push({text: row.text, adapter: row.adapter ?? ""});
    });
    return out;
}

async function main() {
    const o = parseArgs(process.argv.slice(2));
    const {mod, version} = await importNodeLlamaCpp();
    const {getLlama, LlamaLogLevel} = mod;
    const inputs = readInput(o.input);
    for (const inp of inputs) {
        if (inp.adapter !== "" && !o.lora.has(inp.adapter)) throw new Error(`no adapter ${JSON.stringify(inp.adapter)} given with --lora`);
    }
    const t0 = performance.now();
    const llama = await getLlama({gpu: false, build: "never", logLevel: LlamaLogLevel.error, progressLogs: false});
    const model = await llama.loadModel({modelPath: o.model});
    const limit = Math.min(MAX_TOKENS, model.trainContextSize || MAX_TOKENS);
    const vocab = model.fileInfo?.metadata?.tokenizer?.ggml?.tokens?.length;
    const threads = o.threads > 0 ? o.threads : undefined;
    const contexts = new Map(); // adapter name ("" for none) -> sequence
    async function sequenceFor(name) {
        if (!contexts.has(name)) {
            const opts = {contextSize: limit, batchSize: limit, threads, sequences: 1};
            if (name !== "") opts.lora = {adapters: [{filePath: o.lora.get(name)}]};
            const ctx = await model.createContext(opts);
            contexts.set(name, ctx.getSequence());
        }
        return contexts.get(name);
    }
    // Load every context up front and run one warm-up evaluation on each
    // (llama.cpp allocates its compute graph on the first): the per-text
    // times measure scoring only, as in a server that keeps the model.
    for (const name of new Set(inputs.map((x) => x.adapter))) {
        const seq = await sequenceFor(name);
        const first = model.tokens.bos ?? model.tokenize("a", false)[0];
        await seq.controlledEvaluate([first, [first, {generateNext: {probabilities: true, options: {temperature: 0}}}]]);
        await seq.clearHistory();
    }
    const loadMs = performance.now() - t0;

    const results = [];
    for (const inp of inputs) {
        const seq = await sequenceFor(inp.adapter);
        const started = performance.now();
        let tokens = Array.from(model.tokenize(inp.text, false));
        if (model.tokens.bos != null) tokens.unshift(model.tokens.bos);
        tokens = tokens.slice(0, limit);
        if (tokens.length < 2) {
            results.push({tokens: 0, nll: 0, ms: performance.now() - started});
            continue;
        }
        await seq.clearHistory();
        const items = tokens.map((tok, i) => i < tokens.length - 1
            ? [tok, {generateNext: {probabilities: true, options: {temperature: 0}}}]
            : tok);
        const out = await seq.controlledEvaluate(items);
        let nll = 0;
        for (let i = 0; i < tokens.length - 1; i++) {
            const probs = out[i]?.next?.probabilities;
            if (probs == null) throw new Error(`llama.cpp gave no probabilities for token ${i}`);
            if (vocab != null && probs.size !== vocab) throw new Error(`llama.cpp gave ${probs.size} probabilities, not the whole vocabulary of ${vocab}`);
            const p = probs.get(tokens[i + 1]);
            // A probability of 0 (underflow) makes the NLL infinite, which
            // JSON cannot hold: say so rather than let it read as 0.
            if (!(p > 0)) throw new Error(`example ${results.length}: token ${i + 1} has probability ${p}: its perplexity is infinite`);
            nll -= Math.log(p);
        }
        results.push({tokens: tokens.length - 1, nll, ms: performance.now() - started});
    }
    const res = {runtime: `llama.cpp (node-llama-cpp ${version})`, load_ms: loadMs, results};
    fs.writeFileSync(o.output + ".tmp", JSON.stringify(res));
    fs.renameSync(o.output + ".tmp", o.output);
    for (const seq of contexts.values()) await seq.context.dispose();
    await model.dispose();
    await llama.dispose();
}

main().then(
    () => process.exit(0),
    (err) => {
        process.stderr.write(`llama.cpp runner: ${err?.message ?? err}\n`);
        process.exit(1);
    },
);
