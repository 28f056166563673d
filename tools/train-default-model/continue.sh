#!/usr/bin/env bash
# Continues v2's training from the checkpoints kept in checkpoints/ (the VAE with its tuned decoder, and the
# transformer with its text encoder and their averages): MINUTES more of the transformer (default 100), then keeps
# the result again, exports it to work/model and evaluates it. When work/ already has both checkpoints (an interrupted
# run) it wins over checkpoints/: the transformer resumes from its last two-minute save, its learning-rate schedule
# starting over. The tokenizer and the latents are deterministic given the kept VAE, so they are rebuilt.
set -euo pipefail
cd "$(dirname "$0")"
P=${PYTHON:-/usr/bin/python3}
MINUTES=${MINUTES:-100}
LR=${LR:-5e-4}
mkdir -p work
[[ -f work/dit.pt && -f work/vae.pt ]] || $P train.py --stage restore  # an interrupted run continues from work/
[[ -f work/spiece.model ]] || $P train.py --stage tokenizer
[[ -f work/latents.pt ]] || $P train.py --stage latents --latent-clips 6000
$P train.py --stage dit --dit-minutes "$MINUTES" --batch 32 --dit-lr "$LR"
$P train.py --stage keep --keep-dit
$P train.py --stage export --out work/model
$P evaluate.py --model work/model --out work/eval.json
