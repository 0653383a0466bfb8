"""golden.py with outlier channels, as trained BERTs have them.

Random N(0, 0.02) weights give activations of similar magnitude in every channel, which int8
quantizes unrealistically well. Trained BERTs do not look like that: a few hidden channels carry
LayerNorm gains and biases tens of times larger than the rest, so those channels dominate every
LayerNorm output (the input of the Q/K/V and FFN-in projections) and the residual stream; a few
FFN intermediate channels fire far above the others (the input of the FFN-out projection).
(Kovaleva et al. 2021, "BERT Busters: Outlier Dimensions that Disrupt Transformers"; Dettmers et
al. 2022, "LLM.int8()"; Wei et al. 2022, "Outlier Suppression".)

This script builds the same random model golden.py would, then, before anything is written:
  - picks --channels hidden channels; in every LayerNorm (embeddings and both per layer) multiplies
    their gain by --scale (with a random sign) and sets their bias to +-scale/2, so those channels of
    every LayerNorm output are ~scale times the others;
  - picks --ffn-channels intermediate channels per layer and multiplies their rows of the FFN-in
    weight and bias by --ffn-scale, so their GELU outputs are that much larger than the rest;
  - multiplies the FFN-out and attention-output weight rows that write the outlier hidden channels by
    --scale / 4, so the residual stream itself carries the outliers before each LayerNorm;
  - divides the weight columns that read the outlier channels (Q, K, V and FFN-in read hidden
    channels, FFN-out reads intermediate ones) by the channel's factor. A trained model's weights are
    adapted to its activations: the outlier channels do not swamp the projections that read them
    (without this the random model is chaotic: its fp32 output moves ~300x any perturbation, which
    no arithmetic short of fp32 could pass and no trained BERT does). The quantization problem
    stays: each token row's maximum, hence its int8 step, is set by the outlier channels.
Everything else (arguments, files, golden outputs) is golden.py's:

    /usr/bin/python3 models/gen/outliers.py --channels 3 --scale 30 -- \\
        --shape minilm-l6 --out-dir build/golden --name outl --vocab .../vocab.txt --sts .../sts-dev.csv

golden.py reuses existing files only when its own arguments match: give each outlier setting its
own --name.
"""
import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import golden  # noqa: E402
import twin  # noqa: E402


def inject(m, channels, scale, ffn_channels, ffn_scale, seed):
    g = torch.Generator().manual_seed(1000 + seed)
    c = m.config
    hid = torch.randperm(c.hidden_size, generator=g)[:channels]
    with torch.no_grad():
        for name, p in m.named_parameters():
            if name.endswith("LayerNorm.weight"):
                sign = torch.where(torch.rand(channels, generator=g) < 0.5, -1.0, 1.0)
                p[hid] = p[hid] * scale * sign
            elif name.endswith("LayerNorm.bias"):
                sign = torch.where(torch.rand(channels, generator=g) < 0.5, -1.0, 1.0)
                p[hid] = 0.5 * scale * sign
            elif name.endswith("output.dense.weight"):  # attention output and FFN output
                p[hid] = p[hid] * (scale / 4)
            if name.endswith(("query.weight", "key.weight", "value.weight", "intermediate.dense.weight")):
                p[:, hid] = p[:, hid] / scale
        for layer in range(c.num_layers):
            inter = torch.randperm(c.intermediate_size, generator=g)[:ffn_channels]
            params = dict(m.named_parameters())
            w = params[f"encoder.layer.{layer}.intermediate.dense.weight"]
            b = params[f"encoder.layer.{layer}.intermediate.dense.bias"]
            w[inter] = w[inter] * ffn_scale
            b[inter] = b[inter].abs() * ffn_scale
            wo = params[f"encoder.layer.{layer}.output.dense.weight"]
            wo[:, inter] = wo[:, inter] / ffn_scale
    return m


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--channels", type=int, default=3, help="outlier hidden channels")
    ap.add_argument("--scale", type=float, default=30.0, help="their LayerNorm gain factor")
    ap.add_argument("--ffn-channels", type=int, default=4, help="outlier FFN intermediate channels per layer")
    ap.add_argument("--ffn-scale", type=float, default=10.0)
    argv = sys.argv[1:]
    if "--" not in argv:
        ap.error("golden.py arguments go after --")
    k = argv.index("--")
    args = ap.parse_args(argv[:k])
    golden_argv = argv[k + 1:]
    seed = 0
    if "--seed" in golden_argv:
        seed = int(golden_argv[golden_argv.index("--seed") + 1])

    base = twin.random_model

    def random_model(*a, **kw):
        return inject(base(*a, **kw), args.channels, args.scale, args.ffn_channels, args.ffn_scale, seed)

    twin.random_model = random_model
    sys.argv = [os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden.py")] + golden_argv
    return golden.main()


if __name__ == "__main__":
    sys.exit(main())
