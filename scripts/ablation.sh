#!/usr/bin/env bash
# The paper's ablation (L1 vs cGAN vs cGAN+L1) plus cGAN+L1 trained through the renderer
# (configs/bokeh.py) on the synthetic scenes, 3 seeds per arm, then the report.
# Usage: scripts/ablation.sh OUT_DIR [extra --config.* overrides for every run]
# Environment: PYTHON (default python), SEEDS (default "0 1 2"), ARMS (config files, default
# "l1 cgan base bokeh"), RGBD_DIR (optional: a folder of real <name>_rgb.png + <name>_depth_mm.png
# frames; every model is then also evaluated on it and OUT_DIR/report_real/ compares them there,
# while each workdir keeps its thin-lens result in eval_test_thin_lens.json).
# Example (the README's CPU-sized run):
#   scripts/ablation.sh workdirs/ablation --config.num_train_steps=600 --config.image_size=64 \
#     --config.load_size=72 --config.model.num_downs=6
set -euo pipefail
out=${1:?usage: scripts/ablation.sh OUT_DIR [--config.field=value ...]}
shift
python=${PYTHON:-python}
workdirs=()
for arm in ${ARMS:-l1 cgan base bokeh}; do
  for seed in ${SEEDS:-0 1 2}; do
    w="$out/${arm}_seed${seed}"
    "$python" -m dofjax.main --config="configs/${arm}.py:synthetic" --workdir="$w" \
      --config.seed="$seed" --config.num_samples=0 "$@"
    "$python" -m dofjax.main --config="configs/${arm}.py:synthetic" --workdir="$w" \
      --config.seed="$seed" "$@" --mode=eval
    workdirs+=("$w")
  done
done
"$python" -m dofjax.compare "${workdirs[@]}" --out "$out/report"
if [[ -n "${RGBD_DIR:-}" ]]; then
  for w in "${workdirs[@]}"; do
    cp "$w/eval_test.json" "$w/eval_test_thin_lens.json"
    arm=$(basename "$w"); arm=${arm%_seed*}; seed=${w##*_seed}
    "$python" -m dofjax.main --config="configs/${arm}.py:synthetic" --workdir="$w" \
      --config.seed="$seed" "$@" \
      --mode=eval --config.eval_dataset=rgbd_folder --config.rgbd_dir="$RGBD_DIR"
  done
  "$python" -m dofjax.compare "${workdirs[@]}" --out "$out/report_real" --num_images=0
fi
