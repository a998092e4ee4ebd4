// cogumi's chat template check: renders each chat template of a GGUF-to-be
// with a two-turn conversation through @huggingface/jinja, the Jinja
// implementation node-llama-cpp renders chat templates with (as resolved
// from node-llama-cpp itself, so the version is the one it ships with).
//
//   node chattemplate.mjs JOB.json RESULT.json
//
// JOB.json: {"templates": [{"name": "default", "template": "..."}, ...],
// "bos_token": "<s>", "eos_token": "</s>", "messages": [{"role", "content"}, ...]}.
// Each template is parsed and rendered with the messages,
// add_generation_prompt = true and the special tokens, as node-llama-cpp's
// JinjaTemplateChatWrapper passes them.
//
// RESULT.json: {"jinja": VERSION, "results": [{"name", "rendered"} or
// {"name", "error"}, ...]} in input order: error is the Jinja error's
// message, for a template that does not parse, fails while rendering, or
// renders without the conversation's messages.
//
// node-llama-cpp is found in $COGUMI_NODE_LLAMA, a directory holding
// node_modules/node-llama-cpp.
import {createRequire} from "node:module";
import fs from "node:fs";
import path from "node:path";

function jinja() {
    const root = process.env.COGUMI_NODE_LLAMA;
    if (!root) throw new Error("COGUMI_NODE_LLAMA is not set");
    const entry = createRequire(path.join(root, "package.json")).resolve("node-llama-cpp");
    const fromNodeLlama = createRequire(entry);
    const main = fromNodeLlama.resolve("@huggingface/jinja");
    let version = "unknown";
    for (let d = path.dirname(main); d !== path.dirname(d); d = path.dirname(d)) {
        const p = path.join(d, "package.json");
        if (fs.existsSync(p)) {
            const pkg = JSON.parse(fs.readFileSync(p, "utf8"));
            if (pkg.name === "@huggingface/jinja") {
                version = pkg.version;
                break;
            }
        }
    }
    return {Template: fromNodeLlama("@huggingface/jinja").Template, version};
}

function render(Template, job, t) {
    let tmpl;
    try {
        tmpl = new Template(t.template);
    } catch (err) {
        return {name: t.name, error: `does not parse: ${err?.message ?? err}`};
    }
    let out;
    try {
        out = tmpl.render({
            messages: job.messages,
            add_generation_prompt: true,
            bos_token: job.bos_token,
            eos_token: job.eos_token,
        });
    } catch (err) {
        return {name: t.name, error: `fails to render: ${err?.message ?? err}`};
    }
    if (typeof out !== "string") return {name: t.name, error: `renders ${typeof out}, not text`};
    const missing = job.messages.filter((m) => !out.includes(m.content));
    if (missing.length > 0) {
        return {name: t.name, error: `renders without the ${missing[0].role} message ${JSON.stringify(missing[0].content)}`};
    }
    return {name: t.name, rendered: out};
}

function main() {
    const [input, output] = process.argv.slice(2);
    if (!input || !output) throw new Error("usage: chattemplate.mjs JOB.json RESULT.json");
    const job = JSON.parse(fs.readFileSync(input, "utf8"));
    const {Template, version} = jinja();
    const results = job.templates.map((t) => render(Template, job, t));
    fs.writeFileSync(output, JSON.stringify({jinja: version, results}) + "\n");
}

try {
    main();
} catch (err) {
    process.stderr.write(`chattemplate: ${err?.stack ?? err}\n`);
    process.exit(1);
}
