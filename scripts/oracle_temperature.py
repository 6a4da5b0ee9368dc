"""NLL-oracle of an oracle run's MLE, best and last generators sampled at several temperatures.

Usage: python scripts/oracle_temperature.py RUN_DIR [--params FILE] [--samples N]
Prints one row per generator: NLL-oracle (nats per token) at temperatures 1.0, 0.9, 0.8, 0.7.
"""

import argparse
import os

import torch

from seqgan_music.checkpoint import MODELS, load_checkpoint
from seqgan_music.oracle import SEQ_LEN, nll_oracle, oracle_generator, read_oracle_params

TEMPERATURES = (1.0, 0.9, 0.8, 0.7)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir")
    ap.add_argument("--params", default=os.path.join("..", "shared", "data", "seqgan-oracle", "target_params.npz"))
    ap.add_argument("--samples", type=int, default=2000)
    args = ap.parse_args()
    oracle = oracle_generator(read_oracle_params(args.params))
    print("generator  " + "  ".join(f"T {t}" for t in TEMPERATURES))
    for name in ("mle", "best", "last"):
        gen = load_checkpoint(os.path.join(args.run_dir, MODELS[name])).generator.eval()
        cells = []
        for temperature in TEMPERATURES:
            rng = torch.Generator().manual_seed(12345)
            with torch.no_grad():
                samples = gen.sample(args.samples, SEQ_LEN, temperature=temperature, generator=rng)
            cells.append(f"{nll_oracle(oracle, samples):.3f}")
        print(f"{name:<9}  " + "  ".join(cells))


if __name__ == "__main__":
    main()
