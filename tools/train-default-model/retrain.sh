#!/usr/bin/env bash
# The v2 training sequence from scratch (v2 is not shipped yet, see README.md: its transformer needs more hours than
# one run gives it; continue.sh picks up where the kept checkpoints stopped). Each stage is budgeted in wall-clock
# minutes, so a slower or busier machine takes fewer steps and ends with somewhat different weights. Every stage
# resumes from its checkpoint in work/ when one exists: delete work/ to start from scratch. Times: 2 cores, AVX-512.
set -euo pipefail
cd "$(dirname "$0")"
P=${PYTHON:-/usr/bin/python3}
mkdir -p work
[[ -f work/spiece.model ]] || $P train.py --stage tokenizer
$P train.py --stage vae --vae-minutes 38 --vae-lr 1e-3 --vae-plan full         # 12,430 steps
$P vae_check.py --vae work/vae.pt                                             # the ceiling the model can score
$P train.py --stage latents --latent-clips 6000                               # 9 min
$P train.py --stage dit --dit-minutes 90 --batch 32 --dit-lr 1e-3             # 0.25 s a step
$P train.py --stage keep --keep-dit
$P train.py --stage export --out work/model                                   # weights/ once v2 is good enough to ship
$P evaluate.py --model work/model --out work/eval.json --seen 16 --held 2 --pairs 4 --conditioned 6
