"""cogumi's calibrate rule with an imatrix attribute: calibrate's
statistics and the importance matrix in one action, one process and one
loaded model.

    python3 script_calibrate_imatrix.py MODEL_DIR TEXTS.jsonl OUT_DIR CAL_PARAMS.json \
        TEXT.txt SUMS.safetensors IM_PARAMS.json FACTS.json

It runs cogumi_calibrate.main (MODEL_DIR TEXTS.jsonl OUT_DIR CAL_PARAMS)
and then cogumi_imatrix.main (MODEL_DIR TEXT.txt SUMS IM_PARAMS), as the
calibrate and imatrix rules run them, with cogumi_runtime.load_model
answering the second load with the model the first one loaded: the
checkpoint is read, moved to the device and converted once. Each pass
feeds its own token sequences through the model with its own hooks,
removed when it ends, so both outputs are the bytes the two rules write
separately for the same model, text, dtype and settings: calibrate cuts
the per-text token stream (BOS before every text) into samples x seq_len
sequences; the importance matrix cuts the texts joined by blank lines, one
BOS first, into chunks whose first token becomes BOS, as llama-imatrix
does. Those sequences differ (an imatrix chunk after the first starts
with BOS where calibrate's starts inside a text, and the joined text
tokenises differently at the blank lines from the texts one by one), so
every pass of each runs: what the action shares is the process, the
checkpoint read and placed on the device once, and the GPU it was given.

FACTS.json gets the device, the load and the compute time of both, and
the peak memory of the process, for the build's events.
"""

import json
import sys

import cogumi_calibrate
import cogumi_imatrix
import cogumi_runtime


def main(argv):
    if len(argv) != 9:
        print("calibrate: usage: script_calibrate_imatrix.py MODEL_DIR TEXTS.jsonl OUT_DIR CAL_PARAMS.json "
              "TEXT.txt SUMS.safetensors IM_PARAMS.json FACTS.json", file=sys.stderr, flush=True)
        sys.exit(1)
    model_dir, texts, out, cal_params, text, sums, im_params, facts = argv[1:]

    load = cogumi_runtime.load_model
    loaded = {}

    def load_once(path, device, dtype="float32"):
        key = (path, str(device), dtype)
        if key not in loaded:
            loaded[key] = load(path, device, dtype)
        return loaded[key]

    cogumi_runtime.load_model = load_once
    try:
        cogumi_calibrate.main([argv[0], model_dir, texts, out, cal_params])
        cogumi_imatrix.main([argv[0], model_dir, text, sums, im_params])
    finally:
        cogumi_runtime.load_model = load
    merge_facts(facts, [param_facts(cal_params), param_facts(im_params)])


def param_facts(params_path):
    """The facts file a PARAMS.json names, read back; {} when none."""
    with open(params_path, encoding="utf-8") as f:
        path = json.load(f).get("facts")
    if not path:
        return {}
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def merge_facts(path, parts):
    cal, im = parts
    facts = {"device": cal.get("device", im.get("device")),
             "load_seconds": cal.get("load_seconds", 0) + im.get("load_seconds", 0),
             "seconds": cal.get("seconds", 0) + im.get("seconds", 0),
             "imatrix_seconds": im.get("seconds", 0)}
    for k in ("peak_rss_bytes", "gpu_peak_bytes"):
        if k in cal or k in im:
            facts[k] = max(cal.get(k, 0), im.get(k, 0))
    with open(path, "w", encoding="utf-8") as f:
        json.dump(facts, f)


if __name__ == "__main__":
    main(sys.argv)
