#!/usr/bin/env bash
# The paper's ablation (L1 vs cGAN vs cGAN+L1) on the synthetic scenes, 3 seeds per arm, then the
# report. Usage: scripts/ablation.sh OUT_DIR [extra --config.* overrides for every run]
# Example (the README's CPU-sized run):
#   scripts/ablation.sh workdirs/ablation --config.num_train_steps=600 --config.image_size=64 \
#     --config.load_size=72 --config.model.num_downs=6
set -euo pipefail
out=${1:?usage: scripts/ablation.sh OUT_DIR [--config.field=value ...]}
shift
python=${PYTHON:-python}
workdirs=()
for arm in l1 cgan base; do
  for seed in 0 1 2; do
    w="$out/${arm}_seed${seed}"
    "$python" -m dofjax.main --config="configs/${arm}.py:synthetic" --workdir="$w" \
      --config.seed="$seed" --config.num_samples=0 "$@"
    "$python" -m dofjax.main --config="configs/${arm}.py:synthetic" --workdir="$w" \
      --config.seed="$seed" "$@" --mode=eval
    workdirs+=("$w")
  done
done
"$python" -m dofjax.compare "${workdirs[@]}" --out "$out/report"
