// cogumi's llama.cpp runner: the negative log-likelihood of texts under a
// GGUF model, through node-llama-cpp.
//
//   node runner.mjs --model MODEL.gguf --input TEXTS.jsonl --output RESULT.json
//                   [--lora NAME=ADAPTER.gguf ...] [--threads N] [--reference REF.gguf]
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
// With --reference (a model of the same vocabulary, the float model the
// quantised one came from), each text's tokens are scored by both, and each
// result also holds "reference": {"nll": X, "kld": [...], "same_top": K}:
// the reference's NLL, the KL divergence of the model's next-token
// distribution from the reference's at every predicted position, and how
// many of those positions have the same most likely token, as
// llama-perplexity --kl-divergence defines them (KL(P_ref || P_model) summed
// over the tokens whose reference log-probability is above -16; the first
// most likely token in vocabulary order).
//
// node-llama-cpp is imported from $COGUMI_NODE_LLAMA, a directory holding
// node_modules/node-llama-cpp.
import {createRequire} from "node:module";
import fs from "node:fs";
import path from "node:path";
import {pathToFileURL} from "node:url";

const MAX_TOKENS = 4096;

function parseArgs(argv) {
    const o = {model: "", input: "", output: "", lora: new Map(), threads: 0, reference: ""};
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
        else if (a === "--reference") o.reference = next();
        else if (a === "--lora") {
            const v = next();
            const eq = v.indexOf("=");
            if (eq <= 0) throw new Error(`--lora wants NAME=FILE, not ${v}`);
            o.lora.set(v.slice(0, eq), v.slice(eq + 1));
        } else throw new Error(`unknown argument ${a}`);
    }
    if (!o.model || !o.input || !o.output) throw new Error("usage: runner.mjs --model MODEL.gguf --input TEXTS.jsonl --output RESULT.json [--lora NAME=FILE] [--reference REF.gguf]");
    if (o.reference && o.lora.size > 0) throw new Error("--reference and --lora cannot be combined");
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

// distribution is the next-token distribution llama.cpp gave at position
// i, checked to cover the whole vocabulary.
function distribution(out, i, vocab) {
    const probs = out[i]?.next?.probabilities;
    if (probs == null) throw new Error(`llama.cpp gave no probabilities for token ${i}`);
    if (vocab != null && probs.size !== vocab) throw new Error(`llama.cpp gave ${probs.size} probabilities, not the whole vocabulary of ${vocab}`);
    return probs;
}

function tokenNLL(probs, token, example, i) {
    const p = probs.get(token);
    // A probability of 0 (underflow) makes the NLL infinite, which JSON
    // cannot hold: say so rather than let it read as 0.
    if (!(p > 0)) throw new Error(`example ${example}: token ${i + 1} has probability ${p}: its perplexity is infinite`);
    return -Math.log(p);
}

// The smallest positive float32: llama.cpp's softmax gives 0 below it,
// where the model's log-probability is taken as its logarithm.
const MIN_PROB = 1.401298464324817e-45;

// klDivergence is KL(ref || model) over the tokens whose reference
// log-probability is above -16, as llama-perplexity sums it.
function klDivergence(ref, model) {
    let sum = 0;
    for (const [tok, p] of ref) {
        if (!(p > 0)) continue;
        const lp = Math.log(p);
        if (lp <= -16) continue;
        sum += p * (lp - Math.log(Math.max(model.get(tok) ?? 0, MIN_PROB)));
    }
    return sum;
}

// argmax is the most likely token, the first in vocabulary order on a tie.
function argmax(probs) {
    let best = -1, bestP = -1;
    for (const [tok, p] of probs) {
        if (p > bestP || (p === bestP && tok < best)) {
            best = tok;
            bestP = p;
        }
    }
    return best;
}

// loadReference loads the reference model, which must have the model's
// vocabulary (the same token texts), with a context of the same size.
async function loadReference(llama, file, model, limit, threads) {
    const ref = await llama.loadModel({modelPath: file});
    const a = model.fileInfo?.metadata?.tokenizer?.ggml?.tokens ?? [];
    const b = ref.fileInfo?.metadata?.tokenizer?.ggml?.tokens ?? [];
    if (a.length !== b.length) throw new Error(`the reference ${file} has ${b.length} tokens in its vocabulary, the model ${a.length}: KL divergence needs the same vocabulary`);
    for (let i = 0; i < a.length; i++) {
        if (a[i] !== b[i]) throw new Error(`the reference ${file} differs from the model at token ${i} (${JSON.stringify(b[i])} vs ${JSON.stringify(a[i])}): KL divergence needs the same vocabulary`);
    }
    const ctx = await ref.createContext({contextSize: limit, batchSize: limit, threads, sequences: 1});
    const seq = ctx.getSequence();
    const first = ref.tokens.bos ?? ref.tokenize("a", false)[0];
    await seq.controlledEvaluate([first, [first, {generateNext: {probabilities: true, options: {temperature: 0}}}]]);
    return {
        async evaluate(items) {
            await seq.clearHistory();
            return seq.controlledEvaluate(items);
        },
        async dispose() {
            await ctx.dispose();
            await ref.dispose();
        },
    };
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
    const ref = o.reference ? await loadReference(llama, o.reference, model, limit, threads) : null;
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
        const refOut = ref == null ? null : await ref.evaluate(items);
        let nll = 0;
        const cmp = refOut == null ? null : {nll: 0, kld: [], same_top: 0};
        for (let i = 0; i < tokens.length - 1; i++) {
            const probs = distribution(out, i, vocab);
            nll += tokenNLL(probs, tokens[i + 1], results.length, i);
            if (cmp == null) continue;
            const refProbs = distribution(refOut, i, vocab);
            cmp.nll += tokenNLL(refProbs, tokens[i + 1], results.length, i);
            cmp.kld.push(klDivergence(refProbs, probs));
            if (argmax(refProbs) === argmax(probs)) cmp.same_top++;
        }
        const r = {tokens: tokens.length - 1, nll, ms: performance.now() - started};
        if (cmp != null) r.reference = cmp;
        results.push(r);
    }
    const res = {runtime: `llama.cpp (node-llama-cpp ${version})`, load_ms: loadMs, results};
    fs.writeFileSync(o.output + ".tmp", JSON.stringify(res));
    fs.renameSync(o.output + ".tmp", o.output);
    for (const seq of contexts.values()) await seq.context.dispose();
    if (ref != null) await ref.dispose();
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
