#!/usr/bin/env bash
# The GPU checks of har-lab, in one go on a machine with a CUDA device (about 5 minutes, at most 8):
#   1. the GPU-marked tests (amp, pinned memory, the trial's device from Ray, fractional GPUs);
#   2. a short real study on the bundled sample, 0.25 GPU per trial (four trials share one GPU), amp on;
#   3. the trainer's GPU throughput into bench/results/gpu.json.
# Usage: bash bench/gpu_check.sh   (after `make install-dev`; uses .venv when present)
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] && export PATH="$PWD/.venv/bin:$PATH"
export RAY_USAGE_STATS_ENABLED=0 DVC_NO_ANALYTICS=1
python -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 'no CUDA device: nothing to check')"
repo=$PWD
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "== 1/3 GPU tests"
timeout 240 pytest -q -p no:cacheprovider -m gpu tests/test_gpu.py

echo "== 2/3 a study at 0.25 GPU per trial"
cp params.yaml "$work/" && cp -r sample "$work/" && mkdir "$work/pipelines"
python - "$work/pipelines/gpu.yaml" <<'PY'
import sys, yaml
study = yaml.safe_load(open("pipelines/quickstart.yaml"))
study.update(resources={"cpu": 1, "gpu": 0.25}, concurrency=4, permutations=["all"])
study["budget"]["trials"] = 8
study["train"]["amp"] = True
open(sys.argv[1], "w").write(yaml.safe_dump(study))
PY
cd "$work"
har data fetch uci_hapt_sample >/dev/null
har data prepare uci_hapt_sample >/dev/null
timeout 240 har tune --study gpu --num-gpus 1 --plain
har models list
cd "$repo"

echo "== 3/3 training throughput on the GPU"
timeout 120 python bench/gpu.py --prepared "$work/data/prepared"
