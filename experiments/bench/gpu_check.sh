#!/usr/bin/env bash
# visurf's GPU check, in under 8 minutes on one GPU: the tests marked `gpu` (bf16 runs of every
# objective, QLoRA on CUDA, Lightning's FSDP on one device, the stock processor), then a timed
# training step on a Qwen2.5-VL-3B-shaped model with random weights (experiments/bench/gpu_step.py:
# peak memory, tokens/s, MFU). Results: experiments/results/gpu.md.
#
# 1. On a machine with PyPI, in the repository, visurf's environment active:
#        bash experiments/bench/gpu_check.sh fetch
#    Downloads wheels (Python 3.12, x86-64) of what a bare GPU image lacks, or holds at other
#    versions than this checkout was tested with, at the versions installed here, into .whl/
#    (git-ignored, about 25 MB).
# 2. On the GPU machine, in the repository with .whl/ beside it:   bash experiments/bench/gpu_check.sh
#    Installs .whl/ into /tmp/site (nothing else is touched), runs the checks, and writes
#    gpu.txt, gpu_tests.log, gpu_step.log and gpu_step.json into $OUT (default
#    experiments/results/gpu-run/). Exit status: non-zero if either part failed.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
WHEELS=.whl
PY=${PYTHON:-python3}
# Pinned to this checkout's environment at fetch time; antlr4 (hydra's parser) has no wheel on
# PyPI and is built here. bitsandbytes keeps only its CPU and CUDA 13 libraries (the GPU image's
# torch is built for CUDA 13), which takes its wheel from 43 MB to 7 MB.
PACKAGES="transformers peft hydra-core omegaconf bitsandbytes datasets dill multiprocess fsspec regex"
TEST_TIMEOUT=${TEST_TIMEOUT:-300}
STEP_TIMEOUT=${STEP_TIMEOUT:-120}

pinned() {  # name==version of each package as installed in the Python that runs this
    "$PY" -c 'import sys; from importlib.metadata import version
print(" ".join(f"{n}=={version(n)}" for n in sys.argv[1:]))' "$@"
}

fetch() {
    rm -rf "$WHEELS" && mkdir -p "$WHEELS" || return 1
    # shellcheck disable=SC2046  # one argument per package
    "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_24_x86_64 \
        --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux1_x86_64 \
        --platform any -d "$WHEELS" $(pinned $PACKAGES) || return 1
    "$PY" -m pip wheel -q --no-deps -w "$WHEELS" "$(pinned antlr4-python3-runtime)" || return 1
    "$PY" - "$WHEELS" <<'EOF' || return 1
import os, re, sys, zipfile
folder = sys.argv[1]
for name in os.listdir(folder):
    if not name.startswith("bitsandbytes-"):
        continue
    path, keep = os.path.join(folder, name), re.compile(r"libbitsandbytes_(cpu|cuda13\d)\.so$")
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(path + ".tmp", "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            if "libbitsandbytes_" not in item.filename or keep.search(item.filename):
                dst.writestr(item, src.read(item.filename))
    os.replace(path + ".tmp", path)
EOF
    ls -1 "$WHEELS" && du -sh "$WHEELS"
}

check() {
    local out=${OUT:-experiments/results/gpu-run}
    mkdir -p "$out"
    ls "$WHEELS"/*.whl >/dev/null 2>&1 || { echo "no wheels in $WHEELS: run 'bash $0 fetch' where PyPI is reachable"; return 1; }
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/gpu.txt"
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
        "$WHEELS"/*.whl || return 1
    export PYTHONPATH=/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH}
    export VISURF_CACHE=${VISURF_CACHE:-/tmp/visurf-cache} HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
    "$PY" -c 'import torch, torchvision, transformers, peft, bitsandbytes, lightning, hydra, visurf
print("torch", torch.__version__, "cuda", torch.version.cuda, "| transformers", transformers.__version__,
      "| peft", peft.__version__, "| bitsandbytes", bitsandbytes.__version__, "| lightning", lightning.__version__)
assert torch.cuda.is_available(), "torch sees no CUDA device"' | tee -a "$out/gpu.txt" || return 1

    local start=$SECONDS tests step
    timeout "$TEST_TIMEOUT" "$PY" -m pytest -q -rs -m gpu -p no:cacheprovider --durations=0 tests/integration/test_gpu.py \
        2>&1 | tee "$out/gpu_tests.log"
    tests=${PIPESTATUS[0]}
    echo "gpu tests: exit $tests after $((SECONDS - start)) s" | tee -a "$out/gpu.txt"
    start=$SECONDS
    timeout "$STEP_TIMEOUT" "$PY" experiments/bench/gpu_step.py --json "$out/gpu_step.json" 2>&1 | tee "$out/gpu_step.log"
    step=${PIPESTATUS[0]}
    echo "3B-shaped step: exit $step after $((SECONDS - start)) s" | tee -a "$out/gpu.txt"
    [ "$tests" -eq 0 ] && [ "$step" -eq 0 ]
}

case "${1:-check}" in
    fetch) fetch ;;
    check) check ;;
    *) echo "usage: bash $0 [fetch|check]" >&2; exit 2 ;;
esac
